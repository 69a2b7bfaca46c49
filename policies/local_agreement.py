"""LocalAgreement-n: commit what the last n hypotheses agree on (Polák et al. 2022; whisper_streaming)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from simulst.options import Options, opt
from simulst.policies.base import Action, Policy, StateView


@dataclass(frozen=True)
class LocalAgreementOptions(Options):
    """Re-decode the uncommitted part every round; write the longest prefix the last n rounds agree on."""

    n: int = opt(2, "hypotheses that must agree (2: the current one and the previous one)", min=2)


class LocalAgreement(Policy):
    """Writes the current hypothesis' next token while the previous n-1 hypotheses proposed the same one there."""

    Options = LocalAgreementOptions
    observes = True

    def __init__(self, options: LocalAgreementOptions = LocalAgreementOptions()) -> None:
        self.options = options
        self.previous: deque[list[int]] = deque(maxlen=options.n - 1)

    def decide(self, view: StateView) -> Action:
        i = view.position
        agreed = len(self.previous) == self.previous.maxlen and all(i < len(h) and h[i] == view.candidate.token for h in self.previous)
        return Action.WRITE if agreed else Action.READ

    def observe(self, written: list[int], hypothesis: list[int]) -> None:
        """After a round: the tokens written in it, and the model's full continuation after them."""
        self.previous = deque((h[len(written) :] for h in self.previous), maxlen=self.previous.maxlen)
        self.previous.append(list(hypothesis))
