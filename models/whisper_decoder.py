"""Whisper's decoder run for several hypotheses in one pass, each with its own key/value cache.

transformers' decoder keeps one cache for a whole batch. The hypotheses of a server's sessions have prompts,
prefixes and encodings of different lengths, so this pass right-pads them, masks the padding, and keeps each
hypothesis's keys and values apart. One hypothesis alone takes the same path with nothing to pad. The
operations are those of transformers' eager Whisper decoder, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DecoderCache:
    """One hypothesis's keys and values: of the tokens fed so far (per layer) and of its encoding (computed by
    the first pass that needs them)."""

    def __init__(self, encoded) -> None:
        self.encoded = encoded  # 1 x frames x dim
        self.cross: list | None = None  # per layer: (keys, values), heads x frames x head_dim
        self.keys: list = []  # per layer: heads x tokens x head_dim
        self.values: list = []

    @property
    def length(self) -> int:
        return self.keys[0].shape[1] if self.keys else 0

    def crop(self, length: int) -> None:
        """Forget the positions from ``length`` on."""
        self.keys = [k[:, :length] for k in self.keys]
        self.values = [v[:, :length] for v in self.values]


@dataclass
class Step:
    """One hypothesis's share of a pass: the tokens it feeds and the positions whose next-token logits it wants."""

    ids: list[int]
    cache: DecoderCache
    project: list[int]
    logits: object = field(default=None, repr=False)
    """After the pass: len(project) x vocabulary."""
    hidden: object = field(default=None, repr=False)
    """After the pass: the last hidden states at ``project``, len(project) x dim."""
    cross: object = field(default=None, repr=False)
    """After the pass: the chosen heads' cross-attention of every fed token, heads x len(ids) x frames."""


def decode(model, steps: list[Step], heads: list[tuple[int, int]]) -> None:
    """One decoder pass over every step's tokens (``model``: a ``WhisperForConditionalGeneration``); fills in
    each step's ``logits``, ``hidden`` and ``cross`` (of ``heads``, (layer, head) pairs) and grows its cache."""
    import torch

    decoder = model.model.decoder
    first = decoder.layers[0].self_attn
    nheads, scaling = first.num_heads, first.scaling
    sizes = [len(s.ids) for s in steps]
    past = [s.cache.length for s in steps]
    width = max(sizes)
    ids = torch.zeros(len(steps), width, dtype=torch.long)
    positions = torch.zeros(len(steps), width, dtype=torch.long)
    for i, s in enumerate(steps):
        ids[i, : sizes[i]] = torch.tensor(s.ids)
        positions[i, : sizes[i]] = torch.arange(past[i], past[i] + sizes[i])
    total = max(p + n for p, n in zip(past, sizes))
    # a fed token sees the cached tokens and the fed ones up to itself; padded queries see the first key only
    key_at = torch.arange(total).view(1, 1, -1)
    query_at = torch.tensor(past).view(-1, 1, 1) + torch.arange(width).view(1, -1, 1)
    seen = (key_at <= query_at) & (torch.arange(width).view(1, -1, 1) < torch.tensor(sizes).view(-1, 1, 1))
    seen[..., 0] = True
    self_mask = _additive(seen[:, None])
    frames = [s.cache.encoded.shape[1] for s in steps]
    cross_mask = _additive((torch.arange(max(frames)).view(1, -1) < torch.tensor(frames).view(-1, 1))[:, None, None])
    wanted: dict[int, list[int]] = {}
    for layer, head in heads:
        wanted.setdefault(layer, []).append(head)
    rows = {}
    with torch.inference_mode():
        for s in steps:
            if s.cache.cross is None:
                s.cache.cross = [(_split(lay.encoder_attn.k_proj(s.cache.encoded), nheads)[0], _split(lay.encoder_attn.v_proj(s.cache.encoded), nheads)[0])
                                 for lay in decoder.layers]
        x = decoder.embed_tokens(ids) + decoder.embed_positions.weight[positions]
        for index, layer in enumerate(decoder.layers):
            attn = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            q = _split(attn.q_proj(h) * scaling, nheads)
            k, v = _split(attn.k_proj(h), nheads), _split(attn.v_proj(h), nheads)
            keys, values = [], []
            for i, s in enumerate(steps):
                new_k, new_v = k[i, :, : sizes[i]], v[i, :, : sizes[i]]
                if s.cache.keys[index:]:
                    new_k = torch.cat([s.cache.keys[index], new_k], 1)
                    new_v = torch.cat([s.cache.values[index], new_v], 1)
                    s.cache.keys[index], s.cache.values[index] = new_k, new_v
                else:
                    s.cache.keys.append(new_k)
                    s.cache.values.append(new_v)
                keys.append(new_k)
                values.append(new_v)
            x = x + attn.out_proj(_merge(_attend(q, _stack(keys, total), _stack(values, total), self_mask)[0]))
            cross = layer.encoder_attn
            h = layer.encoder_attn_layer_norm(x)
            q = _split(cross.q_proj(h) * scaling, nheads)
            keys = _stack([s.cache.cross[index][0] for s in steps], max(frames))
            values = _stack([s.cache.cross[index][1] for s in steps], max(frames))
            out, weights = _attend(q, keys, values, cross_mask)
            if index in wanted:
                rows[index] = weights[:, wanted[index]]
            x = x + cross.out_proj(_merge(out))
            x = x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))
        x = decoder.layer_norm(x)
        hidden = torch.cat([x[i, s.project] for i, s in enumerate(steps)])
        logits = model.proj_out(hidden)
    start = 0
    for i, s in enumerate(steps):
        n = len(s.project)
        s.hidden, s.logits, start = hidden[start : start + n], logits[start : start + n], start + n
        s.cross = torch.stack([rows[layer][i, wanted[layer].index(head), : sizes[i], : frames[i]] for layer, head in heads])


def _additive(allowed):
    import torch

    return torch.zeros(allowed.shape, dtype=torch.get_default_dtype()).masked_fill(~allowed, float("-inf"))


def _split(t, nheads: int):
    """batch x length x dim -> batch x heads x length x head_dim"""
    batch, length, dim = t.shape
    return t.view(batch, length, nheads, dim // nheads).transpose(1, 2)


def _merge(t):
    """batch x heads x length x head_dim -> batch x length x dim"""
    batch, nheads, length, size = t.shape
    return t.transpose(1, 2).reshape(batch, length, nheads * size)


def _stack(parts: list, length: int):
    """Per-hypothesis heads x n x head_dim tensors, right-padded with zeros to ``length``, as one batch."""
    import torch

    if len(parts) == 1 and parts[0].shape[1] == length:
        return parts[0][None]
    return torch.stack([torch.nn.functional.pad(p, (0, 0, 0, length - p.shape[1])) for p in parts])


def _attend(q, k, v, mask):
    import torch

    weights = torch.softmax(torch.matmul(q, k.transpose(2, 3)) + mask.to(q.dtype), dim=-1)
    return torch.matmul(weights, v), weights
