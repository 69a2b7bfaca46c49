"""REINA: a learned read/write policy, trained on the frozen offline model (Hirschkind et al., AAAI 2026).

Wait for more audio only when reading it would gain information: a small head over the decoder's state on the
partial audio estimates whether the next token's log-probability would still rise with the full audio. Its loss
(``reina_loss``) and the recipe are in docs/policies.md; ``simulst train-policy reina`` trains a head.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulst.options import opt
from simulst.policies.base import Action, StateView
from simulst.policies.learned import load_head, view_features

SHIPPED_HEAD = "reina-whisper-base"


@dataclass(frozen=True)
class ReinaOptions:
    """REINA (a head trained by simulst train-policy reina; the shipped one is for the embedded whisper-base)."""

    threshold: float = opt(0.5, "WRITE when the head's probability of 'nothing more to learn from the audio' reaches this (lower: faster)")
    head: str = opt(SHIPPED_HEAD, "the head: a shipped name or the path of a NAME.json card beside NAME.pt")


class Reina:
    """Writes the proposed token when the head's write probability reaches the threshold."""

    Options = ReinaOptions
    kind = "reina"

    def __init__(self, options: ReinaOptions = ReinaOptions()) -> None:
        self.options = options
        self.head = load_head(options.head, self.kind)

    def bind(self, backend) -> None:
        self.head.check_backend(backend)

    def decide(self, view: StateView) -> Action:
        hidden, values = view_features(view)
        return Action.WRITE if self.head.write_probability(hidden, values) >= self.options.threshold else Action.READ


def information_gain(full, partial):
    """``IG = max(0, log p(y_t | y_<t, X) - log p(y_t | y_<t, X_<=tau))``: what the rest of the audio adds (nats)."""
    return (full - partial).clamp(min=0)


def reina_loss(logits, gain, alpha: float, beta: float, pairs=None, monotonic: float = 1.0):
    """The REINA loss over (truncation, token) samples.

    ``logits``: the head's log-odds of WRITE; ``gain``: the information the rest of the audio adds to the token.
    Writing costs the information lost, reading costs ``alpha`` (nats of latency), and an entropy bonus ``beta``
    keeps the policy soft: ``E[pi * IG + (1 - pi) * alpha - beta * H(pi)]``, minimized by
    ``pi = sigmoid((alpha - IG) / beta)``. ``pairs`` (index pairs of the same token at a shorter and a longer
    truncation) add ``monotonic * E[relu(pi_short - pi_long)]``: more audio never makes writing less safe."""
    import torch
    import torch.nn.functional as F

    pi = torch.sigmoid(logits)
    entropy = -(pi * F.logsigmoid(logits) + (1 - pi) * F.logsigmoid(-logits))
    loss = (pi * gain + (1 - pi) * alpha - beta * entropy).mean()
    if pairs is not None and len(pairs):
        loss = loss + monotonic * torch.relu(pi[pairs[:, 0]] - pi[pairs[:, 1]]).mean()
    return loss
