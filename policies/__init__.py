"""Read/write policies (import name ``simulst.policies``)."""

from simulst.policies.alignatt import AlignAtt, AlignAttOptions
from simulst.policies.base import Action, Policy, StateView
from simulst.policies.waitk import WaitK, WaitKOptions

__all__ = ["Action", "AlignAtt", "AlignAttOptions", "Policy", "StateView", "WaitK", "WaitKOptions"]
