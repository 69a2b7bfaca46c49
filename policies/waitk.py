"""Time-based wait-k for speech: the i-th target word may be written once ``(k + i - 1) * stride_ms`` of source is read."""

from __future__ import annotations

from dataclasses import dataclass

from simulst.options import Options, opt
from simulst.policies.base import Action, Policy, StateView


@dataclass(frozen=True)
class WaitKOptions(Options):
    """wait-k on a fixed source stride (Ma et al. 2019, as applied to speech by FBK and SimulEval's examples)."""

    k: int = opt(3, "words of lag: the first word is written after k strides of source", min=1)
    stride_ms: int = opt(500, "source milliseconds that allow one more target word", min=1)


class WaitK(Policy):
    """Writes a token unless it starts a word beyond the number of words the read source allows."""

    Options = WaitKOptions

    def __init__(self, options: WaitKOptions = WaitKOptions()) -> None:
        self.options = options

    def allowed_words(self, source_ms: float) -> int:
        return max(0, int(source_ms // self.options.stride_ms) - self.options.k + 1)

    def decide(self, view: StateView) -> Action:
        starts = view.candidate.starts_word or view.words_written == 0
        if starts and view.words_written >= self.allowed_words(view.source_ms):
            return Action.READ
        return Action.WRITE
