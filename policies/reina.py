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

SHIPPED_HEAD = "reina-cv-whisper-base"
HEAD_HELP = "the head: a shipped name or the path of a NAME.json card beside NAME.pt"


@dataclass(frozen=True)
class ReinaOptions(Options):
    """REINA (a head trained by simulst train-policy reina; the shipped one is for the embedded whisper-base)."""

    threshold: float | None = opt(
        None, "WRITE when the head's write probability reaches this (lower: faster; default: the threshold in the head's card, else 0.5)", min=0, max=1
    )
    head: str = opt(SHIPPED_HEAD, HEAD_HELP)
    attention_ms: float | None = opt(
        None, "also READ while the token's most-attended frame is within this much audio of the end of the buffer "
        "(AlignAtt's rule as a veto on the head; 0: the head alone; default: the head card's, else 0)", min=0,
    )


class Reina(Policy):
    """Writes the proposed token when the head's write probability reaches the threshold (and, with
    ``attention_ms``, the token's most-attended frame is not that close to the end of the audio)."""

    Options = ReinaOptions
    kind = "reina"

    def __init__(self, options: ReinaOptions = ReinaOptions()) -> None:
        self.options = options
        self.head = load_head(options.head, self.kind)
        self.threshold = float(self.head.card.get("threshold", 0.5) if options.threshold is None else options.threshold)
        """The write probability at which it writes: the option's, else the one its head's card was shipped with."""
        self.attention_ms = float(self.head.card.get("attention_ms", 0) if options.attention_ms is None else options.attention_ms)
        """READ while the token's most-attended frame is this close to the end of the buffer (0: never)."""

    def bind(self, backend) -> None:
        self.head.check_backend(backend)

    def decide(self, view: StateView) -> Action:
        if self.attention_ms and view.lead_ms <= self.attention_ms:
            return Action.READ
        hidden, values = view_features(view)
        return Action.WRITE if self.head.write_probability(hidden, values) >= self.threshold else Action.READ
