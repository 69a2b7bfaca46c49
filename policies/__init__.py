"""Read/write policies (import name ``simulst.policies``)."""

from simulst.policies.alignatt import AlignAtt, AlignAttOptions
from simulst.policies.base import Action, Policy, StateView
from simulst.policies.offline import Offline
from simulst.policies.waitk import WaitK, WaitKOptions

__all__ = ["Action", "AlignAtt", "AlignAttOptions", "Offline", "Policy", "StateView", "WaitK", "WaitKOptions"]
