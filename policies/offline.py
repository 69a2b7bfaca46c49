"""The offline baseline: read the whole source, then write (SimulEval's wait-until-end)."""

from __future__ import annotations

from dataclasses import dataclass

from simulst.options import Options
from simulst.policies.base import Action, Policy, StateView


@dataclass(frozen=True)
class OfflineOptions(Options):
    """No options: the upper bound on quality, with the largest latency."""


class Offline(Policy):
    Options = OfflineOptions

    def __init__(self, options: OfflineOptions = OfflineOptions()) -> None:
        self.options = options

    def decide(self, view: StateView) -> Action:
        return Action.READ
