"""REINA: a learned read/write policy, trained on the frozen offline model (Hirschkind et al., AAAI 2026).

Wait for more audio only when reading it would gain information: a small head over the decoder's state on the
partial audio estimates whether the next token's log-probability would still rise with the full audio. Its loss
(``simulst.training.losses.reina_loss``) and the recipe are in docs/policies.md; ``simulst train-policy reina`` trains a head.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulst.options import Options, opt
from simulst.policies.base import Action, Policy, StateView
from simulst.policies.learned import load_head, view_features

SHIPPED_HEAD = "reina-whisper-base"
HEAD_HELP = "the head: a shipped name or the path of a NAME.json card beside NAME.pt"


@dataclass(frozen=True)
class ReinaOptions(Options):
    """REINA (a head trained by simulst train-policy reina; the shipped one is for the embedded whisper-base)."""

    threshold: float | None = opt(
        None, "WRITE when the head's write probability reaches this (lower: faster; default: the threshold in the head's card, else 0.5)", min=0, max=1
    )
    head: str = opt(SHIPPED_HEAD, HEAD_HELP)


class Reina(Policy):
    """Writes the proposed token when the head's write probability reaches the threshold."""

    Options = ReinaOptions
    kind = "reina"

    def __init__(self, options: ReinaOptions = ReinaOptions()) -> None:
        self.options = options
        self.head = load_head(options.head, self.kind)
        self.threshold = float(self.head.card.get("threshold", 0.5) if options.threshold is None else options.threshold)
        """The write probability at which it writes: the option's, else the one its head's card was shipped with."""

    def bind(self, backend) -> None:
        self.head.check_backend(backend)

    def decide(self, view: StateView) -> Action:
        hidden, values = view_features(view)
        return Action.WRITE if self.head.write_probability(hidden, values) >= self.threshold else Action.READ
