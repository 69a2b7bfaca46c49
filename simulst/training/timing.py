"""Word times from Whisper's cross-attention: a transcript's tokens aligned to encoder frames by dynamic time
warping over the alignment heads' standardized attention (the way Whisper derives its own word timestamps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: float
    end_ms: float


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest monotonic path from (0, 0) to (rows-1, cols-1) with steps right, down and diagonal:
    ``(row indices, column indices)`` along it."""
    rows, cols = cost.shape
    total = np.full((rows, cols), np.inf)
    for i in range(rows):
        if i == 0:
            total[0] = np.cumsum(cost[0])
            continue
        # from above or the upper left, then any run along the row: D[j] = C[j] + min_{k<=j}(m[k] - C[k])
        reach = np.minimum(total[i - 1], np.concatenate([[np.inf], total[i - 1][:-1]])) + cost[i]
        running = np.cumsum(cost[i])
        total[i] = running + np.minimum.accumulate(reach - running)
    i, j = rows - 1, cols - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        steps = [(a, b) for a, b in ((i - 1, j - 1), (i - 1, j), (i, j - 1)) if a >= 0 and b >= 0]
        i, j = min(steps, key=lambda s: total[s])
        path.append((i, j))
    path.reverse()
    return np.array([p[0] for p in path]), np.array([p[1] for p in path])


def token_starts(scores: np.ndarray) -> np.ndarray:
    """The first frame of each token (``scores``: tokens x frames, higher where a token is) on the DTW path."""
    rows, cols = dtw(-scores)
    starts = np.zeros(scores.shape[0], dtype=np.int64)
    for t in range(scores.shape[0]):
        starts[t] = cols[np.argmax(rows == t)]
    return starts


def words_from_tokens(pieces: Sequence[str], starts_ms: Sequence[float], end_ms: float) -> list[Word]:
    """Group token ``pieces`` (a leading space starts a word) into words, each from its first token's start to
    the next word's start (the last one to ``end_ms``)."""
    words: list[tuple[str, float]] = []
    for piece, start in zip(pieces, starts_ms):
        if piece.startswith(" ") or not words:
            words.append((piece.strip(), float(start)))
        else:
            words[-1] = (words[-1][0] + piece, words[-1][1])
    ends = [w[1] for w in words[1:]] + [end_ms]
    return [Word(text, start, max(start, end)) for (text, start), end in zip(words, ends) if text]


def transcript_words(backend, audio: np.ndarray, src_lang: str, tokens: Sequence[int] | None = None, encoded=None) -> list[Word]:
    """Whisper's own transcription of ``audio`` (or the given transcript ``tokens``) with word times (ms), from
    one teacher-forced pass of the streaming decoder (``encoded``: the audio's encoder states, when already
    computed)."""
    from simulst.models.whisper import alignments
    from simulst.options import SessionOptions
    from simulst.training.teacher import offline_tokens

    options = SessionOptions(src_lang=src_lang, task="transcribe")
    stream = backend.open(options)
    if tokens is None:
        tokens, encoded = offline_tokens(backend, stream, audio, options)
    tokens = list(tokens)
    if not tokens:
        return []
    encoded = backend.encode(audio) if encoded is None else encoded
    frames = min(encoded.shape[1], backend.frames(len(audio)))
    prompt = stream.prompt()
    positions = list(range(len(prompt) - 1, len(prompt) - 1 + len(tokens)))
    rows = backend.forced(encoded, prompt + tokens, positions[-1:]).cross[:, positions, :frames]
    scores = alignments(rows, list(range(len(tokens))), causal=False).numpy()
    starts = token_starts(scores) * backend.frame_ms
    pieces = [stream.detokenize([t]) for t in tokens]
    return words_from_tokens(pieces, starts, len(audio) * 1000 / backend.sample_rate)
