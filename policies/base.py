"""The policy interface: decide READ or WRITE for one proposed token from a view of the session state."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

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

    @property
    def lead_ms(self) -> float:
        """Audio after the frame the candidate is about (its aligned frame): how much was heard past its source."""
        return (self.frames - self.candidate.aligned_frame) * self.frame_ms


class Policy:
    """A read/write policy: ``decide`` is all most policies need. What only some policies do is declared here
    with a neutral default, so that the session asks every policy the same way:

    - ``bind(backend)``: called once when a session starts (a learned head refuses a model it was not trained on);
    - ``observes`` and ``observe(written, hypothesis)``: after each round, what was written and the model's whole
      continuation after it (the session decodes that continuation only for a policy that observes);
    - ``revises`` and ``stable(hypothesis)``: a re-translation stabiliser. The session shows the model's whole
      continuation as revisable text each round and commits the first ``stable(...)`` tokens of it, instead of
      asking ``decide`` token by token.

    A policy is registered under the ``simulst.policies`` entry point group; its options dataclass is ``Options``.
    """

    Options: ClassVar[type]
    observes: ClassVar[bool] = False
    revises: ClassVar[bool] = False

    def bind(self, backend) -> None:
        """Check the session's backend (raise OptionError to refuse it)."""

    def decide(self, view: StateView) -> Action:
        raise NotImplementedError(f"{type(self).__name__} decides nothing: define decide, or revises and stable")

    def observe(self, written: list[int], hypothesis: list[int]) -> None:
        """After a round: the tokens written in it, and the model's continuation after them (``observes``)."""

    def stable(self, hypothesis: list[int]) -> int:
        """How many first tokens of this round's whole continuation to commit (``revises``)."""
        return 0
