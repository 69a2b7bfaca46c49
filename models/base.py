"""What a model backend offers a session: incremental greedy proposals with their cross-attention.

A backend (shared, holds the weights) opens one ``Stream`` per session (holds per-session state such as the
detected language). For each decision round the stream encodes the buffered audio and returns a
``Hypothesis`` that proposes the next target token given the committed prefix; the policy decides whether it
is written (``accept``) or whether to wait for more audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from simulst.options import SessionOptions


@dataclass(frozen=True)
class Candidate:
    """The model's next target token, as a policy sees it."""

    token: int
    starts_word: bool
    is_end: bool
    attention: np.ndarray
    """Cross-attention of this token over encoder frames (the policy's heads, averaged); sums to about 1."""
    logprob: float = 0.0


class Hypothesis(Protocol):
    frames: int
    """Encoder frames that hold buffered audio (attention may cover more, e.g. padding)."""

    def propose(self) -> Candidate: ...

    def accept(self, candidate: Candidate) -> None: ...


class Stream(Protocol):
    def begin(self, audio: np.ndarray, prefix: Sequence[int], final: bool, context: Sequence[int] = ()) -> Hypothesis | None:
        """A hypothesis over ``audio`` continuing ``prefix`` (committed tokens of this audio), after ``context``
        (committed tokens of earlier, dropped audio); None when more audio is needed first."""

    def detokenize(self, tokens: Sequence[int]) -> str: ...


class Backend(Protocol):
    sample_rate: int
    frame_ms: float
    """Source milliseconds per encoder frame."""

    def open(self, options: SessionOptions) -> Stream:
        """A per-session stream; raises OptionError for a language or task the model cannot do."""
