"""Whisper's decoder run for several hypotheses in one pass, each with its own key/value cache.

transformers' decoder keeps one cache for a whole batch. The hypotheses of a server's sessions have prompts,
prefixes and encodings of different lengths, so this pass packs their tokens together for the linear layers and
keeps each hypothesis's keys, values and attention apart. One hypothesis alone takes the same path. The
operations are those of transformers' eager Whisper decoder, in the same order.
"""

from __future__ import annotations

import functools
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
    each step's ``logits``, ``hidden`` and ``cross`` (of ``heads``, (layer, head) pairs) and grows its cache.

    The tokens of all steps are packed into one matrix for the linear layers (where batching saves: their
    weights are read once for all sessions), with no padding; attention, which each hypothesis does over its
    own keys, runs per step."""
    import torch

    decoder = model.model.decoder
    first = decoder.layers[0].self_attn
    nheads, scaling = first.num_heads, first.scaling
    spans, at = [], 0
    for s in steps:
        spans.append(slice(at, at + len(s.ids)))
        at += len(s.ids)
    wanted: dict[int, list[int]] = {}
    for layer, head in heads:
        wanted.setdefault(layer, []).append(head)
    rows: dict[int, list] = {}
    with torch.inference_mode():
        masks = [_causal(len(s.ids), s.cache.length, s.cache.encoded.device) for s in steps]
        for s in steps:
            if s.cache.cross is None:
                s.cache.cross = [(_split(lay.encoder_attn.k_proj(s.cache.encoded[0]), nheads), _split(lay.encoder_attn.v_proj(s.cache.encoded[0]), nheads))
                                 for lay in decoder.layers]
        device = steps[0].cache.encoded.device
        ids = torch.tensor([t for s in steps for t in s.ids], device=device)
        positions = torch.cat([torch.arange(s.cache.length, s.cache.length + len(s.ids)) for s in steps]).to(device)
        x = decoder.embed_tokens(ids) + decoder.embed_positions.weight[positions]
        for index, layer in enumerate(decoder.layers):
            attn = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            q, k, v = attn.q_proj(h) * scaling, attn.k_proj(h), attn.v_proj(h)
            out = []
            for s, span, mask in zip(steps, spans, masks):
                keys, values = _split(k[span], nheads), _split(v[span], nheads)
                if index < len(s.cache.keys):
                    keys, values = torch.cat([s.cache.keys[index], keys], 1), torch.cat([s.cache.values[index], values], 1)
                    s.cache.keys[index], s.cache.values[index] = keys, values
                else:
                    s.cache.keys.append(keys)
                    s.cache.values.append(values)
                out.append(_attend(_split(q[span], nheads), keys, values, mask)[0])
            x = x + attn.out_proj(torch.cat(out))
            cross = layer.encoder_attn
            q = cross.q_proj(layer.encoder_attn_layer_norm(x)) * scaling
            out = []
            for i, (s, span) in enumerate(zip(steps, spans)):
                o, weights = _attend(_split(q[span], nheads), *s.cache.cross[index])
                out.append(o)
                if index in wanted:
                    rows.setdefault(i, []).extend(weights[wanted[index]])
            x = x + cross.out_proj(torch.cat(out))
            x = x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))
        x = decoder.layer_norm(x)
        hidden = x[[span.start + p for s, span in zip(steps, spans) for p in s.project]]
        logits = model.proj_out(hidden)
    order = [(layer, head) for layer in sorted(wanted) for head in wanted[layer]]
    at = 0
    for i, s in enumerate(steps):
        n = len(s.project)
        s.hidden, s.logits, at = hidden[at : at + n], logits[at : at + n], at + n
        s.cross = torch.stack([rows[i][order.index(pair)] for pair in heads])


def bfloat16_linears(model) -> None:
    """Put the decoder's linear layers (and the vocabulary projection) of ``model`` in bfloat16, in place."""
    cls = _bfloat16_linear()
    for layer in model.model.decoder.layers:
        for attn in (layer.self_attn, layer.encoder_attn):
            for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
                setattr(attn, name, cls(getattr(attn, name)))
        layer.fc1, layer.fc2 = cls(layer.fc1), cls(layer.fc2)
    model.proj_out = cls(model.proj_out)  # the token embedding it shared its weights with stays float32


MAX_ROWS = 32
"""The most rows one bfloat16 product takes: bigger packs run in slices of this many. On a CPU with AMX, oneDNN
multiplies 40 rows and more with another kernel than fewer, whose float32 sums round to other bfloat16 bits."""


def padded_rows(count: int) -> int:
    """The row count a bfloat16 product runs at for ``count`` rows (at most ``MAX_ROWS``): 2, 3, 4, 6, 8, 12, 16,
    24, 32 (at most half again as many rows). From two rows to ``MAX_ROWS``, a row's result does not depend on the
    rows beside it (one row alone takes another kernel whose float32 sums, rounded to bfloat16, differ now and
    then), so a hypothesis gets the same numbers packed with others as alone. And torch keeps memory for each row
    count it multiplies bfloat16 at (a few MB each for the vocabulary projection) while a decoder meets new counts
    every round: on this ladder they are 9."""
    if count <= 4:
        return max(count, 2)
    power = 1 << (count - 1).bit_length()
    return power * 3 // 4 if power * 3 // 4 >= count else power


@functools.cache
def _bfloat16_linear():
    import torch

    class Bfloat16Linear(torch.nn.Module):
        """A linear layer with bfloat16 weights: float32 in, float32 out, float32 sums; rows in slices of at most
        ``MAX_ROWS``, each padded to ``padded_rows``."""

        def __init__(self, linear) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().to(torch.bfloat16), requires_grad=False)

        def forward(self, x):
            rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
            out = torch.cat([self._product(rows[start : start + MAX_ROWS]) for start in range(0, max(rows.shape[0], 1), MAX_ROWS)])  # 0 rows: one empty slice
            return out.float().reshape(*x.shape[:-1], out.shape[-1])

        def _product(self, rows):
            count = rows.shape[0]
            extra = padded_rows(count) - count
            if extra:
                rows = torch.cat([rows, rows.new_zeros(extra, rows.shape[1])])
            return torch.nn.functional.linear(rows, self.weight, self.bias)[:count]

    return Bfloat16Linear


def _causal(size: int, past: int, device="cpu"):
    """Additive mask of ``size`` fed tokens over the ``past`` cached ones and themselves (None for one token)."""
    import torch

    if size == 1:
        return None
    seen = torch.arange(past + size).view(1, -1) <= past + torch.arange(size).view(-1, 1)
    return torch.zeros(seen.shape, dtype=torch.get_default_dtype()).masked_fill(~seen, float("-inf")).to(device)


def _split(t, nheads: int):
    """length x dim -> heads x length x head_dim"""
    length, dim = t.shape
    return t.view(length, nheads, dim // nheads).transpose(0, 1)


def _attend(q, k, v, mask=None):
    import torch

    scores = torch.matmul(q, k.transpose(1, 2))
    weights = torch.softmax(scores if mask is None else scores + mask.to(q.dtype), dim=-1)
    out = torch.matmul(weights, v)  # heads x length x head_dim -> length x dim
    return out.transpose(0, 1).reshape(q.shape[1], -1), weights
