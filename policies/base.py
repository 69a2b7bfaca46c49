"""The policy interface: decide READ or WRITE for one proposed token from a view of the session state."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Protocol

from simulst.models.base import Candidate


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class StateView:
    """What a policy may look at when the model proposes ``candidate``."""

    candidate: Candidate
    source_ms: float
    """Source audio read so far."""
    frames: int
    """Encoder frames that hold the buffered audio."""
    frame_ms: float
    words_written: int
    """Target words committed so far, this round included."""
    position: int = 0
    """Tokens written in this round before the candidate."""
    prefix: int = 0
    """Committed tokens of the buffered audio before the candidate (this round's included): the decoder's prefix."""


class Policy(Protocol):
    """``decide`` is all a policy needs. A policy may also define ``bind(backend)``, called once when a session
    starts, to check the backend (a learned policy refuses a model its head was not trained for)."""

    Options: ClassVar[type]

    def decide(self, view: StateView) -> Action: ...


class Observer(Protocol):
    """A policy that also wants, after each round, what was written and the model's continuation after it."""

    def observe(self, written: list[int], hypothesis: list[int]) -> None: ...
