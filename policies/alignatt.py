"""AlignAtt: write a token unless its cross-attention points at the end of the buffered audio."""

from __future__ import annotations

from dataclasses import dataclass

from simulst.options import Options, opt
from simulst.policies.base import Action, Policy, StateView


@dataclass(frozen=True)
class AlignAttOptions(Options):
    """AlignAtt (Papi et al. 2023; SimulStreaming's formulation on Whisper's alignment heads), with a margin that
    grows as the model is less sure of the token."""

    threshold_ms: float = opt(400, "READ when the frame the token attends most is within this much audio of the end of the buffer", min=0)
    uncertainty_ms: float = opt(
        200, "extra margin per nat of the token's negative log-probability: unsure tokens wait for more audio (0: plain AlignAtt)", min=0
    )


class AlignAtt(Policy):
    """The most-attended frame of a token is where its source is; too close to the end means: wait."""

    Options = AlignAttOptions

    def __init__(self, options: AlignAttOptions = AlignAttOptions()) -> None:
        self.options = options

    def decide(self, view: StateView) -> Action:
        margin_ms = self.options.threshold_ms + self.options.uncertainty_ms * max(0.0, -view.candidate.logprob)
        if view.lead_ms <= margin_ms:
            return Action.READ
        return Action.WRITE
