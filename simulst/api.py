"""The library API: translate audio as a lazy stream of events."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from simulst import build
from simulst.events import Event
from simulst.options import SessionOptions, from_mapping


def translate_stream(
    audio: str | Path | np.ndarray | Iterable[np.ndarray],
    *,
    model: str = "whisper-base",
    policy: str = "alignatt",
    policy_options: dict[str, Any] | None = None,
    **session_options: Any,
) -> Iterator[Event]:
    """Yield Commit/Partial events as ``audio`` is consumed, then one End.

    ``audio`` is a file path, a float32 mono array at 16 kHz, or an iterable of such chunks (a live source).
    ``session_options`` are SessionOptions fields (``src_lang="de"``, ``chunk_ms=500``, ...).
    """
    from simulst.streaming.audio import load_audio

    backend = build.backend("whisper", {"model": model})
    session = build.make(backend, build.SessionSpec(from_mapping(SessionOptions, session_options), policy, policy_options))
    if isinstance(audio, (str, Path)):
        audio = load_audio(audio, backend.sample_rate)
    chunks = [audio] if isinstance(audio, np.ndarray) else audio
    step = round(session.options.chunk_ms * backend.sample_rate / 1000)
    for chunk in chunks:
        for start in range(0, len(chunk), step):
            session.feed_audio(chunk[start : start + step])
            yield from session.events()
    session.feed_eof()
    yield from session.events()
