"""Training the non-autoregressive CTC head (``simulst train-nar``) by sequence-level distillation.

The frozen Whisper decodes every training utterance as a session would (English transcribed, other languages
translated into English; its own output, not a human reference, is the target: sequence-level knowledge
distillation, so any speech in a language it knows is training data), and one teacher-forced pass over its output
gives the frame each token is about (the peak of its alignment heads, as AlignAtt reads them). The encoder's states
over the utterance and over ``--cuts`` truncations of it (what a streaming round sees) are cached once per
utterance; a truncation's target is the teacher's tokens heard before it (by their aligned frames), so only the
whole utterance is decoded. The encoder runs as the NAR backend runs it (``--encoder-pad-ms``, no silence pad by
default), the teacher as the whisper backend does. The head trains on the cache only (on the model's ``--device``):
CTC, plus the cross-entropy of each token at its aligned step (``--align``), which guides CTC to where the teacher
heard the token. Its output vocabulary is the Whisper tokens of the targets, scored against Whisper's own token
embeddings.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulst.options import SessionOptions, opt
from simulst.training.cache import key, once
from simulst.training.policy import Selection

CACHE_VERSION = 2


@dataclass(frozen=True)
class NarTrainOptions(Selection):
    """Training the CTC head of the non-autoregressive model (simulst train-nar)."""

    max_s: float = opt(25.0, "leave out training utterances longer than this (seconds)", min=1)
    per_language: int | None = opt(None, "at most this many utterances in each source language other than English, drawn with --seed", min=1)
    english: int | None = opt(None, "at most this many English utterances (transcribed), drawn with --seed", min=1)
    utterances: int | None = opt(None, "train on the first N drawn utterances, languages interleaved in proportion (what a cut-short cache pass holds)", min=1)
    encoder_pad_ms: int = opt(0, "silence appended to the audio before the head's encoder pass (the head needs no end marker: 0 saves the pad's encoder cost)", min=0, max=30000)
    epochs: int = opt(10, "passes over the cached utterances", min=1)
    batch: int = opt(16, "utterances per step", min=1)
    lr: float = opt(1e-3, "peak learning rate (AdamW, linear warm-up, cosine decay)", min=0)
    width: int = opt(256, "width of the head's transformer layers", min=4)
    layers: int = opt(3, "transformer layers of the head", min=1)
    stack: int = opt(4, "encoder frames (20 ms) stacked into one CTC step", min=1)
    valid: int = opt(100, "utterances held out of training to validate (token error rate per epoch)", min=1)
    align: float = opt(1.0, "weight of the cross-entropy of each target token at the step the frozen model's alignment heads put it (0: CTC alone)", min=0)
    cuts: int = opt(4, "truncations of each utterance (at 40 to 90 percent, drawn per utterance with --seed) trained on beside the whole: their targets are the tokens heard before the cut", min=0)

    def cap(self, language: str | None) -> int | None:
        return self.english if language == "en" else self.per_language

    def arrange(self, picked: list) -> list:
        """Languages interleaved in proportion, then the first ``utterances``."""
        return interleave(picked, lambda p: p[1].src_lang)[: self.utterances]


def interleave(items: list, language) -> list:
    """``items`` ordered so that every prefix holds each language in its share of the whole (the order within a
    language kept)."""
    count: dict = {}
    rank = []
    for item in items:
        lang = language(item)
        rank.append(count.get(lang, 0))
        count[lang] = rank[-1] + 1
    order = sorted(range(len(items)), key=lambda i: ((rank[i] + 0.5) / count[language(items[i])], i))
    return [items[i] for i in order]


def cache_key(teacher, encoder, item_id: str, session: SessionOptions, cut: float) -> str:
    return key(CACHE_VERSION, teacher.identity, teacher.numerics, encoder.numerics, teacher.options.pad_ms, encoder.options.pad_ms, item_id, session.task, session.src_lang, f"{cut:.3f}")


def utterance_cache(teacher, encoder, audio: np.ndarray, session: SessionOptions) -> dict[str, np.ndarray]:
    """The head's encoder states over the audio's frames (float16), the frozen model's output tokens for it, and
    the frame each token is about (the peak of the model's alignment when it proposed the token)."""
    from simulst.training.teacher import forced_proposals, offline_tokens

    stream = teacher.open(session)
    tokens, encoded = offline_tokens(teacher, stream, audio, session)
    aligned = [c.aligned_frame for c, _ in forced_proposals(teacher, stream, audio, tokens, encoded)[0]] if tokens else []
    return {"states": states_of(encoder, audio), "tokens": np.asarray(tokens, np.int32), "frames": np.asarray(aligned, np.int32)}


def states_of(encoder, audio: np.ndarray) -> np.ndarray:
    """The encoder's states over the frames that hold ``audio`` (float16)."""
    encoded = encoder.encode(audio)[0]
    return encoded[: min(encoded.shape[0], encoder.frames(len(audio)))].float().cpu().numpy().astype(np.float16)


def cut_fractions(seed: int, item_id: str, count: int) -> list[float]:
    """``count`` truncation points of an utterance (fractions 0.4-0.9), drawn from the seed and the item alone: the
    same whatever else is drawn, so a cache stays valid when rows are added."""
    rng = random.Random(f"{seed}:{item_id}")
    return [round(rng.uniform(0.4, 0.9), 3) for _ in range(count)]


def heard(frames: np.ndarray, cut: int) -> int:
    """How many of an utterance's tokens were heard before encoder frame ``cut``: the longest prefix whose every
    token is followed by one the teacher's alignment puts at or before the cut (the token the cut falls in, and
    the utterance's last, are left out)."""
    count = 0
    while count + 1 < len(frames) and frames[count + 1] <= cut:
        count += 1
    return count


def cache_utterances(teacher, encoder, items, cache_dir: Path, options: NarTrainOptions, progress=None) -> list[tuple[Path, list[Path], SessionOptions, str]]:
    """Per item, the whole utterance (states, teacher tokens and frames) and its ``options.cuts`` truncations
    (states), each cached once as an npz; the note of ``progress`` counts the utterances computed a minute."""
    from simulst.streaming.audio import load_audio

    cache_dir.mkdir(parents=True, exist_ok=True)
    out, computed, started = [], 0, time.perf_counter()
    for done, (item_id, path, session) in enumerate(items):
        audio = []  # read once, when a part of it is not cached yet

        def read() -> np.ndarray:
            nonlocal computed
            if not audio:
                audio.append(load_audio(path, encoder.sample_rate))
                computed += 1
            return audio[0]

        whole = once(cache_dir / f"{cache_key(teacher, encoder, item_id, session, 1.0)}.npz", lambda: utterance_cache(teacher, encoder, read(), session))
        cuts = [
            once(cache_dir / f"{key(CACHE_VERSION, 'cut', encoder.identity, encoder.numerics, encoder.options.pad_ms, item_id, f'{cut:.3f}')}.npz",
                 lambda: {"states": states_of(encoder, read()[: int(len(read()) * cut)])})
            for cut in cut_fractions(options.seed, item_id, options.cuts)
        ]
        out.append((whole, cuts, session, item_id))
        if progress:
            minutes = (time.perf_counter() - started) / 60
            progress(done + 1, len(items), f"{computed / minutes:.1f} utt/min" if computed else session.src_lang)
    return out


@dataclass
class Item:
    states: np.ndarray
    targets: list[int]  # head symbols (1.. ; 0 is the blank)
    condition: tuple[int, int]  # Whisper's language and task tokens
    utterance: str  # the item id it was cut from
    steps: np.ndarray  # the step each target is about (the teacher's aligned frame)


def utterance_parts(parts: list[np.ndarray], tokens: list[int], frames: np.ndarray, condition: tuple[int, int], utterance: str, stack: int) -> list[tuple]:
    """``(states, tokens, condition, utterance, steps)`` of an utterance's whole (``parts[0]``) and truncations
    (the rest), each with the tokens heard before its end; those CTC can spell in steps of ``stack`` frames."""
    out = []
    for n, states in enumerate(parts):
        count = len(tokens) if n == 0 else heard(frames, len(states))
        kept = tokens[:count]
        repeats = sum(a == b for a, b in zip(kept, kept[1:]))
        if kept and len(kept) + repeats <= -(-len(states) // stack):
            out.append((states, kept, condition, utterance, np.minimum(frames[:count], len(states) - 1) // stack))
    return out


def symbols(parts: list[tuple]) -> tuple[list[Item], list[int]]:
    """The items of ``utterance_parts`` with head symbols for targets, and the output vocabulary: the sorted
    Whisper tokens of the targets."""
    vocab = sorted({t for _, tokens, *_ in parts for t in tokens})
    symbol = {t: i + 1 for i, t in enumerate(vocab)}
    return [Item(s, [symbol[t] for t in tokens], c, u, a) for s, tokens, c, u, a in parts], vocab


def load_cache(cached: list[tuple[Path, list[Path], SessionOptions, str]], stack: int, teacher) -> tuple[list[Item], list[int]]:
    """The cached utterances and truncations CTC can spell, and the output vocabulary (``symbols``)."""
    parts = []
    for whole, cuts, session, utterance in cached:
        with np.load(whole) as npz:
            states, tokens, frames = npz["states"], npz["tokens"].tolist(), npz["frames"]
        truncated = []
        for path in cuts:
            with np.load(path) as npz:
                truncated.append(npz["states"])
        condition = (teacher.languages[session.src_lang], teacher.task_ids[session.task])
        parts += utterance_parts([states, *truncated], tokens, frames, condition, utterance, stack)
    return symbols(parts)


def _batch(items: list[Item], augment: bool, rng: np.random.Generator):
    import torch

    lengths = [len(i.states) for i in items]
    states = torch.zeros(len(items), max(lengths), items[0].states.shape[1])
    for n, item in enumerate(items):
        x = torch.from_numpy(item.states.astype(np.float32))
        if augment:  # two time masks of up to 10 frames each
            for _ in range(2):
                width = int(rng.integers(0, 11))
                start = int(rng.integers(0, max(1, len(x) - width)))
                x[start : start + width] = 0
        states[n, : len(x)] = x
    padding = torch.arange(max(lengths))[None] >= torch.tensor(lengths)[:, None]
    condition = torch.tensor([i.condition for i in items])
    targets = torch.tensor([t for i in items for t in i.targets])
    steps = torch.tensor([(n, s) for n, i in enumerate(items) for s in i.steps.tolist()]).reshape(-1, 2)
    return states, condition, padding, torch.tensor(lengths), targets, torch.tensor([len(i.targets) for i in items]), steps


def token_error_rate(net, items: list[Item]) -> float:
    """Edit distance of the head's collapsed best paths to the targets, per 100 target tokens."""
    import torch

    from simulst.eval.quality import edit_distance
    from simulst.models.nar import collapse

    errors, device = 0, net.blank.device
    with torch.inference_mode():
        for item in items:
            logprobs = net(torch.from_numpy(item.states.astype(np.float32)).to(device)[None], torch.tensor([item.condition], device=device))[0]
            errors += edit_distance([s for s, _ in collapse(logprobs.argmax(-1).tolist())], item.targets)
    return 100 * errors / max(1, sum(len(i.targets) for i in items))


def train_ctc(items: list[Item], table, vocab: list[int], english: int, options: NarTrainOptions, progress=None, device: str = "cpu"):
    """Train a head over Whisper's embedding ``table`` with output tokens ``vocab`` on the items (on ``device``);
    the items of ``options.valid`` utterances validate (token error rates of English transcription and of
    translation). Returns the network and a report."""
    import torch

    from simulst.models.nar import head_net

    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    utterances = sorted({i.utterance for i in items})
    held = {utterances[i] for i in rng.permutation(len(utterances))[: min(options.valid, len(utterances) // 10)]}
    valid, train = [i for i in items if i.utterance in held], [i for i in items if i.utterance not in held]
    net = head_net(table.to(device), vocab, items[0].states.shape[1], options.width, options.layers, options.stack).to(device)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=options.lr, weight_decay=1e-2)
    steps = options.epochs * math.ceil(len(train) / options.batch)
    warmup = min(300, steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    started = time.perf_counter()
    report = {"utterances_train": len(train), "utterances_valid": len(valid), "steps": steps, "epochs": []}
    by_length = sorted(range(len(train)), key=lambda i: len(train[i].states))
    for epoch in range(options.epochs):
        net.train()
        batches = [by_length[i : i + options.batch] for i in range(0, len(by_length), options.batch)]  # similar lengths
        rng.shuffle(batches)
        total = 0.0
        for group in batches:
            batch = [t.to(device) for t in _batch([train[i] for i in group], True, rng)]
            states, condition, padding, lengths, targets, target_lengths, aligned = batch
            logprobs = net(states, condition, padding)
            loss = ctc(logprobs.transpose(0, 1), targets, -(-lengths // options.stack), target_lengths)
            if options.align:  # each target token at the step the teacher's attention put it
                loss = loss - options.align * logprobs[aligned[:, 0], aligned[:, 1], targets].mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total += loss.item() * len(group)
        entry = {"epoch": epoch + 1, "train_loss": round(total / max(len(train), 1), 4), "seconds": round(time.perf_counter() - started, 1)}
        net.eval()
        for name, part in (("valid_ter_en", [i for i in valid if i.condition[0] == english]), ("valid_ter_x", [i for i in valid if i.condition[0] != english])):
            if part:
                entry[name] = round(token_error_rate(net, part), 2)
        report["epochs"].append(entry)
        if progress:
            progress(epoch + 1, options.epochs, entry)
    return net.eval(), report


def train_nar(data: list[str], output: str | Path, options: NarTrainOptions, teacher, console=None) -> Path:
    """The whole recipe: the rows drawn, encoder states and targets cached, training; returns the head's card."""
    from simulst import build
    from simulst.cards import save
    from simulst.errors import SimulstError
    from simulst.eval.data import read_tsv
    from simulst.models.nar import FORMAT
    from simulst.training.policy import training_items
    from simulst.training.progress import recipe_bars

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = [r for path in data for r in read_tsv(path)]
    items, sources, unknown = training_items(rows, options, teacher)
    if not items:
        raise SimulstError("no training rows: give X->en or English rows of at most --max-s seconds, in languages the model knows")
    encoder = teacher if teacher.options.pad_ms == options.encoder_pad_ms else build.backend("whisper", dataclasses.replace(teacher.options, pad_ms=options.encoder_pad_ms))
    started = time.perf_counter()
    with recipe_bars(console) as bar:
        cached = cache_utterances(teacher, encoder, items, output / "cache", options, bar("encoder states + targets (frozen model)"))
        loaded, vocab = load_cache(cached, options.stack, teacher)
        if not loaded:
            raise SimulstError("the frozen model wrote nothing CTC can spell for the training rows")
        train_bar = bar("training")
        table = teacher.model.model.decoder.embed_tokens.weight.detach()
        note = lambda e: f"loss {e['train_loss']:.3f} ter en {e.get('valid_ter_en', '-')} x {e.get('valid_ter_x', '-')}"  # noqa: E731
        net, report = train_ctc(loaded, table, vocab, teacher.languages["en"], options, lambda d, t, e: train_bar(d, t, note(e)), teacher.device)
    card = {
        "format": FORMAT,
        "model": teacher.identity,
        "numerics": {"teacher": teacher.numerics, "encoder": encoder.numerics},
        "encoder": teacher.options.model,
        "pad_ms": options.encoder_pad_ms,
        "dim": int(loaded[0].states.shape[1]),
        "width": options.width,
        "layers": options.layers,
        "stack": options.stack,
        "languages": sorted({s.src_lang for _, _, s in items}),
        "vocab": vocab,
        "target": "the frozen model's own output for each utterance (sequence-level distillation): English transcribed, "
        "other languages translated into English; for a truncation, its tokens heard before the cut (by their aligned frames); "
        "Whisper tokens scored against Whisper's token embeddings",
        "data": {
            "files": [str(p) for p in data],
            "by_source": sources,
            "left_out_languages": unknown,
            "utterances": len(items),
            "items": len(loaded),
            "hours_cached": round(sum(len(i.states) for i in loaded) * encoder.frame_ms / 3.6e6, 2),
        },
        "training": {**dataclasses.asdict(options), "report": report, "minutes": round((time.perf_counter() - started) / 60, 1)},
    }
    return save(net, card, output / f"ctc-{Path(teacher.options.model).name}", half=True)
