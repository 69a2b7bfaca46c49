"""Re-translation: every round the model translates the whole segment again; a stabiliser commits a prefix.

The display is the committed text plus the newest hypothesis' provisional rest, which later rounds may revise
(Niehues et al. 2018; Arivazhagan et al. 2020). The committed prefix is the decoder's forced prefix, so it
never changes; the session asks ``stable(hypothesis)`` how many of the hypothesis' tokens to commit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from simulst.options import Options, opt
from simulst.policies.base import Policy


@dataclass(frozen=True)
class RetranslateOptions(Options):
    """Re-translate the whole uncommitted segment every round; show it as provisional; commit a stable prefix."""

    stabiliser: Literal["mask-k", "agreement", "none"] = opt(
        "mask-k",
        "what becomes committed: all but the last k tokens (mask-k), the prefix the last n hypotheses agree on "
        "(agreement), or nothing until the segment ends (none: every update may revise everything)",
    )
    k: int = opt(4, "mask-k: tokens of each hypothesis held back as provisional", min=0)
    n: int = opt(2, "agreement: hypotheses (this round's and the previous ones) that must agree", min=2)


def _agreed(hypotheses) -> int:
    """Length of the common prefix of the hypotheses."""
    count = 0
    for tokens in zip(*hypotheses):
        if any(t != tokens[0] for t in tokens):
            break
        count += 1
    return count


class Retranslate(Policy):
    """A stabiliser: ``stable`` takes this round's hypothesis (token ids after the committed text) and returns how
    many of its first tokens to commit; ``observe`` hears what was committed and what stayed provisional."""

    Options = RetranslateOptions
    observes = revises = True

    def __init__(self, options: RetranslateOptions = RetranslateOptions()) -> None:
        self.options = options
        self.previous: deque[list[int]] = deque(maxlen=options.n - 1)

    def stable(self, hypothesis: list[int]) -> int:
        kind = self.options.stabiliser
        if kind == "mask-k":
            return max(0, len(hypothesis) - self.options.k)
        if kind == "agreement":
            return _agreed([hypothesis, *self.previous]) if len(self.previous) == self.previous.maxlen else 0
        return 0

    def observe(self, written: list[int], provisional: list[int]) -> None:
        self.previous.append(list(written) + list(provisional))
        self.previous = deque((h[len(written) :] for h in self.previous), maxlen=self.previous.maxlen)
