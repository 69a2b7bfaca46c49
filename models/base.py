"""What a model backend offers a session: incremental greedy proposals with their cross-attention.

A backend (shared, holds the weights) opens one ``Stream`` per session (holds per-session state such as the
detected language). For each decision round the stream encodes the buffered audio and returns a
``Hypothesis`` that proposes the next target token given the committed prefix; the policy decides whether it
is written (``accept``) or whether to wait for more audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Protocol, Sequence

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
    entropy: float = 0.0
    """Entropy (nats) of the model's distribution over the next token."""
    hidden: np.ndarray | None = None
    """The decoder's last hidden state at this position (what a learned policy reads); None if the backend has none."""
    alignment: np.ndarray | None = None
    """Per-frame alignment score (higher: the token's source is there), with the frames that every token attends
    (attention sinks) normalized away; None where the backend gives only ``attention``."""

    @property
    def aligned_frame(self) -> int:
        """The frame this token is about: the peak of ``alignment``, else of ``attention``."""
        return int(np.argmax(self.attention if self.alignment is None else self.alignment))


class Hypothesis(Protocol):
    frames: int
    """Encoder frames that hold buffered audio (attention may cover more, e.g. padding)."""

    def propose(self, banned: Collection[int] = ()) -> Candidate:
        """The model's best next token that is not in ``banned`` (the guards rule out tokens that repeat)."""

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
    identity: str
    """Which weights: a learned policy's head is refused by a backend other than the one it was trained for."""

    def open(self, options: SessionOptions) -> Stream:
        """A per-session stream; raises OptionError for a language or task the model cannot do."""
