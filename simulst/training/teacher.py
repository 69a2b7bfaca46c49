"""Teacher-forced passes of the frozen Whisper over truncated audio: what learned policies train on.

For one utterance: the model's own full-audio output is the target sequence ``y``; for each truncation point,
one encoder pass over the audio heard so far and one teacher-forced decoder pass over ``y`` give, for every target
token, its log-probability given the partial audio and the features a head reads at that point. Both are those of
streaming decoding: the backend's encoder and decoder pass (``WhisperBackend.forced``), the candidates of
``models.whisper.proposals`` and the policy's own ``view_features``. One more pass over the full audio gives
``log p(y_t | y_<t, full audio)``, and the model's transcription of the source, aligned to the audio
(``training.timing``), gives the end time of every source word (what a text policy reads). The result is cached
per utterance (npz), so training never runs Whisper again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from simulst.options import SessionOptions
from simulst.policies.base import StateView
from simulst.policies.learned import FEATURES, view_features
from simulst.training.cache import key, once
from simulst.training.timing import transcript_words

MAX_TOKENS = 120
CACHE_VERSION = 2
"""Part of every cache key: bumped when what an utterance's cache holds changes."""


def offline_tokens(backend, stream, audio: np.ndarray, options: SessionOptions, context: Sequence[int] = ()) -> tuple[list[int], object]:
    """The model's output for the whole audio after ``context`` (one round's greedy continuation under the session's
    guards) and the encoder states it read (None for empty audio), which the teacher-forced passes over the same
    audio reuse."""
    from simulst.guards import Guards
    from simulst.session import continuation

    hyp = stream.begin(audio, [], True, context)
    if hyp is None:
        return [], None
    guard = Guards([], 0, len(audio) / backend.sample_rate, options, stream.detokenize)
    return [c.token for c in continuation(hyp, guard, MAX_TOKENS)], hyp.encoded


def forced_proposals(backend, stream, audio: np.ndarray, tokens: Sequence[int], encoded=None, context: Sequence[int] = ()) -> tuple[list, int]:
    """The model's proposal at every position of ``tokens`` (after ``context``), teacher-forced over ``audio`` as a
    streaming round computes it (the backend's encoder and decoder pass, ``models.whisper.proposals``):
    ``(candidate, log-probabilities)`` pairs, and the encoder frames that hold the audio. ``encoded``: the
    encoder's states of ``audio`` when already computed."""
    from simulst.models.whisper import proposals

    b = backend
    encoded = b.encode(audio) if encoded is None else encoded
    frames = min(encoded.shape[1], b.frames(len(audio)))
    prompt = stream.prompt(context)
    positions = list(range(len(prompt) - 1, len(prompt) - 1 + len(tokens)))
    step = b.forced(encoded, prompt + list(tokens), positions)
    return proposals(b, step.logits, step.hidden, step.cross, positions, begin=True), frames


def teacher_pass(backend, stream, audio: np.ndarray, tokens: Sequence[int], encoded=None, context: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """Per target token, over ``audio`` after ``context``: ``target`` log p(y_t | y_<t, audio), and the head's
    features of the model's proposal at that position (``hidden``, ``scalars``), as a streaming round computes them
    (``encoded``: the audio's encoder states, when already computed)."""
    b = backend
    candidates, frames = forced_proposals(b, stream, audio, tokens, encoded, context)
    source_ms = len(audio) * 1000 / b.sample_rate
    hidden, values, target = [], [], []
    for t, (candidate, logprobs) in enumerate(candidates):
        features = view_features(StateView(candidate, source_ms, frames, b.frame_ms, 0, 0, prefix=t))
        hidden.append(features[0])
        values.append(features[1])
        target.append(float(logprobs[tokens[t]]))
    return {"target": np.asarray(target, np.float32), "hidden": np.stack(hidden), "scalars": np.stack(values)}


def cut_points(samples: int, step: int, most: int | None = None) -> list[int]:
    """Truncation points every ``step`` samples before the end; with ``most``, at most that many, spread evenly
    over them (a pass at each costs its length: without a cap the feature pass grows with the square of the
    utterance, with one with its length)."""
    cuts = list(range(step, samples, step))
    if most is None or len(cuts) <= most:
        return cuts
    return [cuts[round(i * (len(cuts) - 1) / max(most - 1, 1))] for i in range(most)]


def resumed(backend, stream, audio: np.ndarray, options: SessionOptions, fraction: float) -> tuple[np.ndarray, list[int]]:
    """``audio`` as a session holds it after trimming its history there (``Session._trim``): from
    ``TRIM_MARGIN_MS`` before the attention peak of the first word the model starts after ``fraction`` of it, with
    the model's tokens before that word as its text context (the last ``options.context_tokens``); empty when no
    word starts there."""
    from simulst.session import TRIM_MARGIN_MS

    tokens, encoded = offline_tokens(backend, stream, audio, options)
    if not tokens:
        return audio[:0], []
    margin = backend.sample_rate * TRIM_MARGIN_MS // 1000
    per_frame = backend.frame_ms * backend.sample_rate / 1000
    candidates, _ = forced_proposals(backend, stream, audio, tokens, encoded)
    for i, (candidate, _) in enumerate(candidates[1:], 1):
        cut = max(0, int(candidate.aligned_frame * per_frame) - margin)
        if candidate.starts_word and cut >= fraction * len(audio):
            return audio[cut:], tokens[:i][-options.context_tokens :] if options.context_tokens else []
    return audio[:0], []


def utterance_features(
    backend, audio: np.ndarray, options: SessionOptions, step_ms: int, most_cuts: int | None = None, resume: float | None = None
) -> dict[str, np.ndarray] | None:
    """Targets, truncation points and per-(cut, token) features of one utterance (with ``resume``, of its part
    after a history trim there: ``resumed``); None if the model wrote nothing."""
    stream = backend.open(options)
    context: list[int] = []
    if resume is not None:
        audio, context = resumed(backend, stream, audio, options, resume)
    tokens, encoded = offline_tokens(backend, stream, audio, options, context) if len(audio) else ([], None)
    if not tokens:
        return None
    full = teacher_pass(backend, stream, audio, tokens, encoded, context)
    cuts = cut_points(len(audio), step_ms * backend.sample_rate // 1000, most_cuts)
    passes = [teacher_pass(backend, stream, audio[:cut], tokens, None, context) for cut in cuts]
    transcript = tokens if options.task == "transcribe" else None
    words = transcript_words(backend, audio, options.src_lang, transcript, encoded)
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


def cache_key(backend, row_id: str, options: SessionOptions, step_ms: int, most_cuts: int | None = None, resume: float | None = None) -> str:
    cuts = (step_ms,) if most_cuts is None else (step_ms, most_cuts)
    resumed = () if resume is None else ("resume", resume, options.context_tokens)
    return key(CACHE_VERSION, backend.identity, backend.numerics, FEATURES, backend.options.alignment, backend.options.pad_ms, row_id, options.task, options.src_lang, *cuts, *resumed)


def cache_features(
    backend, items, cache_dir: str | Path, step_ms: int = 400, progress=None, most_cuts: int | None = None, resume: float | None = None
) -> list[Path]:
    """Features of every ``(row_id, audio_path, options)`` item (with ``resume``: of its part after a history
    trim, ``resumed``), computed once into ``cache_dir``; returns the npz files (items the model wrote nothing for
    are left out). ``progress(done, total, note)`` reports, the note with the utterances computed a minute (cached
    ones cost nothing and are not counted)."""
    from simulst.streaming.audio import load_audio

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths, computed, started = [], 0, time.perf_counter()
    for done, (row_id, audio_path, options) in enumerate(items):
        def make() -> dict:
            nonlocal computed
            features = utterance_features(backend, load_audio(audio_path, backend.sample_rate), options, step_ms, most_cuts, resume)
            computed += 1
            return {"empty": np.bool_(features is None), **(features or {})}

        path = once(cache_dir / f"{cache_key(backend, row_id, options, step_ms, most_cuts, resume)}.npz", make)
        if not np.load(path)["empty"]:
            paths.append(path)
        if progress:
            minutes = (time.perf_counter() - started) / 60
            progress(done + 1, len(items), f"{computed / minutes:.1f} utt/min" if computed else row_id)
    return paths

