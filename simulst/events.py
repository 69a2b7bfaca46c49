"""Typed events: what a session emits, each stamped with source time and compute time.

``source_ms`` is the source audio consumed when the emission was decided (computation-unaware delay);
``compute_ms`` is the compute spent on the round that emitted it; ``elapsed_ms`` is when the emission would
appear on a live stream on this machine (computation-aware): each round starts once its audio has arrived and
the previous round has finished, then takes its compute time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Union

import numpy as np


@dataclass(frozen=True)
class Commit:
    """Text that is final: it is never revised."""

    text: str
    source_ms: float
    compute_ms: float
    elapsed_ms: float
    type: str = "commit"


@dataclass(frozen=True)
class Partial:
    """Provisional continuation after the committed text; the next partial or commit replaces it."""

    text: str
    source_ms: float
    compute_ms: float
    elapsed_ms: float
    type: str = "partial"


@dataclass(frozen=True)
class End:
    """The source is finished and all text is committed; ``text`` is the whole output."""

    text: str
    source_ms: float
    compute_ms: float
    elapsed_ms: float
    type: str = "final"


@dataclass(frozen=True)
class Guard:
    """A guard stopped the model's output in a round: ``reason`` is ``loop`` (an n-gram about to repeat a third
    time) or ``max_tokens`` (the round's token budget ran out)."""

    reason: str
    source_ms: float
    compute_ms: float
    elapsed_ms: float
    type: str = "guard"


@dataclass(frozen=True)
class SpeechOut:
    """Synthesized speech of committed ``text``, planned to play from ``start_ms`` (source clock) for ``duration_ms``."""

    text: str
    audio: np.ndarray = field(repr=False, compare=False)
    sample_rate: int
    start_ms: float
    duration_ms: float
    source_ms: float
    compute_ms: float
    elapsed_ms: float
    type: str = "speech"


Event = Union[Commit, Partial, End, Guard, SpeechOut]


def event_to_dict(event: Event) -> dict:
    """A JSON-ready dict with ``type`` first (the jsonl and server wire format); speech audio is left out."""
    data = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "audio"}
    return {"type": data.pop("type"), **{k: round(v, 3) if isinstance(v, float) else v for k, v in data.items()}}
