"""Teacher-forced passes of the frozen Whisper over truncated audio: what learned policies train on.

For one utterance: the model's own full-audio output is the target sequence ``y``; for each truncation point,
one encoder pass over the audio heard so far and one teacher-forced decoder pass over ``y`` give, for every target
token, its log-probability given the partial audio and the features a head reads at that point (the same code as
streaming decoding: ``WhisperBackend.encode``, the stream's prompt and masks, ``alignments``). One more pass over
the full audio gives ``log p(y_t | y_<t, full audio)``, and the model's transcription of the source, aligned to
the audio (``models.timing``), gives the end time of every source word (what a text policy reads). The result is cached per utterance (npz), so training
never runs Whisper again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from simulst.models.timing import transcript_words
from simulst.options import SessionOptions
from simulst.policies.learned import FEATURES, TAIL_S, scalars

MAX_TOKENS = 120
CACHE_VERSION = 2
"""Part of every cache key: bumped when what an utterance's cache holds changes."""


def offline_tokens(backend, stream, audio: np.ndarray, options: SessionOptions) -> list[int]:
    """The model's output for the whole audio: the offline policy's single round (greedy, the session's guards)."""
    from simulst.guards import Guards

    hyp = stream.begin(audio, [], True)
    if hyp is None:
        return []
    guard = Guards([], 0, len(audio) / backend.sample_rate, options, stream.detokenize)
    tokens: list[int] = []
    while len(tokens) < MAX_TOKENS:
        candidate = hyp.propose()
        if candidate.is_end or guard.check(tokens + [candidate.token]):
            break
        hyp.accept(candidate)
        tokens.append(candidate.token)
    return tokens


def teacher_pass(backend, stream, audio: np.ndarray, tokens: Sequence[int]) -> dict[str, np.ndarray]:
    """Per target token, over ``audio``: ``target`` log p(y_t | y_<t, audio), and the head's features of the
    model's proposal at that position (``hidden``, ``scalars``)."""
    import torch

    from simulst.models.whisper import alignments

    b = backend
    encoded = b.encode(audio)
    frames = min(encoded.shape[1], -(-len(audio) // round(b.frame_ms * b.sample_rate / 1000)))
    prompt = stream.prompt()
    positions = list(range(len(prompt) - 1, len(prompt) - 1 + len(tokens)))
    with torch.inference_mode():
        out = b.model.model.decoder(input_ids=torch.tensor([prompt + list(tokens)]), encoder_hidden_states=encoded, output_attentions=True)
        hidden = out.last_hidden_state[0, positions]
        masks = torch.stack([b.begin_mask] + [b.mask] * (len(tokens) - 1))
        logprobs = torch.log_softmax(b.model.proj_out(hidden) + masks, dim=-1)
        entropy = -(logprobs.exp() * torch.nan_to_num(logprobs, neginf=0.0)).sum(-1)
        rows = torch.stack([out.cross_attentions[layer][0, head] for layer, head in b.heads])
        if b.options.alignment == "normalized":
            aligned = alignments(rows, positions).argmax(-1)
        else:
            aligned = rows[:, positions].mean(0).argmax(-1)
        tail = max(0, frames - round(TAIL_S * 1000 / b.frame_ms))
        tail_mass = rows[:, positions].mean(0)[:, tail:].sum(-1)
    buffer_s = frames * b.frame_ms / 1000
    values = [
        scalars(float(logprobs[t].max()), float(entropy[t]), buffer_s, (frames - int(aligned[t])) * b.frame_ms / 1000, float(tail_mass[t]), t)
        for t in range(len(tokens))
    ]
    return {
        "target": logprobs[torch.arange(len(tokens)), torch.tensor(list(tokens))].numpy(),
        "hidden": hidden.numpy(),
        "scalars": np.asarray(values, np.float32),
    }


def utterance_features(backend, audio: np.ndarray, options: SessionOptions, step_ms: int) -> dict[str, np.ndarray] | None:
    """Targets, truncation points and per-(cut, token) features of one utterance; None if the model wrote nothing."""
    stream = backend.open(options)
    tokens = offline_tokens(backend, stream, audio, options)
    if not tokens:
        return None
    full = teacher_pass(backend, stream, audio, tokens)
    step = step_ms * backend.sample_rate // 1000
    cuts = list(range(step, len(audio), step))
    passes = [teacher_pass(backend, stream, audio[:cut], tokens) for cut in cuts]
    transcript = tokens if options.task == "transcribe" else None
    words = transcript_words(backend, audio, options.src_lang, transcript)
    return {
        "tokens": np.asarray(tokens, np.int32),
        "target_word": np.cumsum([stream.detokenize([t]).startswith(" ") or i == 0 for i, t in enumerate(tokens)]) - 1,
        "source_end_ms": np.asarray([w.end_ms for w in words], np.float32),
        "cuts_ms": np.asarray(cuts, np.float32) * 1000 / backend.sample_rate,
        "duration_ms": np.float32(len(audio) * 1000 / backend.sample_rate),
        "full": full["target"],
        "partial": np.stack([p["target"] for p in passes]) if passes else np.zeros((0, len(tokens)), np.float32),
        "hidden": np.stack([p["hidden"] for p in passes]).astype(np.float16) if passes else np.zeros((0, len(tokens), 1), np.float16),
        "scalars": np.stack([p["scalars"] for p in passes]) if passes else np.zeros((0, len(tokens), 8), np.float32),
    }


def cache_key(backend, row_id: str, options: SessionOptions, step_ms: int) -> str:
    text = "|".join([str(CACHE_VERSION), backend.identity, FEATURES, backend.options.alignment, str(backend.options.pad_ms), row_id, options.task, str(options.src_lang), str(step_ms)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_features(backend, items, cache_dir: str | Path, step_ms: int = 400, progress=None) -> list[Path]:
    """Features of every ``(row_id, audio_path, options)`` item, computed once into ``cache_dir``; returns the
    npz files (items the model wrote nothing for are left out). ``progress(done, total, row_id)`` reports."""
    from simulst.streaming.audio import load_audio

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for done, (row_id, audio_path, options) in enumerate(items):
        path = cache_dir / f"{cache_key(backend, row_id, options, step_ms)}.npz"
        if not path.exists():
            features = utterance_features(backend, load_audio(audio_path, backend.sample_rate), options, step_ms)
            np.savez(path, empty=np.bool_(features is None), **(features or {}))
        if not np.load(path)["empty"]:
            paths.append(path)
        if progress:
            progress(done + 1, len(items), row_id)
    return paths

