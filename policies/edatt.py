"""EDAtt: write a token unless much of its cross-attention lies on the last frames of the buffered audio."""

from __future__ import annotations

from dataclasses import dataclass

from simulst.options import Options, opt
from simulst.policies.base import Action, Policy, StateView


@dataclass(frozen=True)
class EDAttOptions(Options):
    """Encoder-decoder attention (Papi et al. 2023, "Attention as a guide for simultaneous speech translation")."""

    frames: int = opt(20, "how many of the last encoder frames count as 'the end of the audio' (20 ms each for Whisper)", min=1)
    alpha: float = opt(0.45, "READ when the attention mass on those frames (and any padding after them) reaches this", min=0, max=1)


class EDAtt(Policy):
    """Attention mass near the end of the audio means the token depends on speech not fully heard yet."""

    Options = EDAttOptions

    def __init__(self, options: EDAttOptions = EDAttOptions()) -> None:
        self.options = options

    def decide(self, view: StateView) -> Action:
        tail = float(view.candidate.attention[max(0, view.frames - self.options.frames) :].sum())
        return Action.READ if tail >= self.options.alpha else Action.WRITE
