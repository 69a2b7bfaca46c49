"""AlignAtt: write a token unless its cross-attention points at the last frames of the buffered audio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulst.options import opt
from simulst.policies.base import Action, StateView


@dataclass(frozen=True)
class AlignAttOptions:
    """AlignAtt (Papi et al. 2023; SimulStreaming's formulation on Whisper's alignment heads)."""

    frame_threshold: int = opt(
        10, "READ when the most-attended encoder frame is within this many frames of the end of the audio (20 ms each for Whisper)"
    )


class AlignAtt:
    """The most-attended frame of a token is where its source is; too close to the end means: wait."""

    Options = AlignAttOptions

    def __init__(self, options: AlignAttOptions = AlignAttOptions()) -> None:
        self.options = options

    def decide(self, view: StateView) -> Action:
        attended = int(np.argmax(view.candidate.attention))
        if attended >= view.frames - self.options.frame_threshold:
            return Action.READ
        return Action.WRITE
