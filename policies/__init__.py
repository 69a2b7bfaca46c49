"""Read/write policies (import name ``simulst.policies``)."""

from simulst.policies.alignatt import AlignAtt, AlignAttOptions
from simulst.policies.base import Action, Policy, StateView
from simulst.policies.edatt import EDAtt, EDAttOptions
from simulst.policies.local_agreement import LocalAgreement, LocalAgreementOptions
from simulst.policies.offline import Offline
from simulst.policies.retranslate import Retranslate, RetranslateOptions
from simulst.policies.waitk import WaitK, WaitKOptions

__all__ = [
    "Action",
    "AlignAtt",
    "AlignAttOptions",
    "EDAtt",
    "EDAttOptions",
    "LocalAgreement",
    "LocalAgreementOptions",
    "Offline",
    "Policy",
    "Retranslate",
    "RetranslateOptions",
    "StateView",
    "WaitK",
    "WaitKOptions",
]
