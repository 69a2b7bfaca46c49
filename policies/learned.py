"""The foundation of learned read/write policies: what a head reads, the head network, and head files.

A head reads, for the proposed token, the decoder's last hidden state over the partial audio plus a few scalars
(its log-probability and entropy, and where it stands in time: audio buffered, audio after its aligned frame,
attention on the end of the audio, tokens before it). Training reads the same numbers from teacher-forced passes
(``simulst.models.teacher``), so a head sees at inference what it was trained on.

A head file is ``NAME.pt`` (the state dict) beside ``NAME.json`` (its card: the policy and model it was trained
for, the feature set, the data, the seed, thresholds and dev results; ``simulst.cards``). Heads shipped with
simulst live in ``policies/heads``; a head is named by its shipped name or by a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulst.errors import OptionError
from simulst.policies.base import StateView

FEATURES = "whisper-hidden+8-v1"
"""The feature set: a head trained on another one is refused."""
SCALARS = ["logprob", "entropy", "buffer_s", "lead_s", "tail_mass", "prefix", "rate", "first"]
TAIL_S = 0.2
"""``tail_mass`` is the attention on the last 200 ms of the audio and on the silence after it."""
SHIPPED = Path(__file__).parent / "heads"


def scalars(logprob: float, entropy: float, buffer_s: float, lead_s: float, tail_mass: float, prefix: int) -> list[float]:
    """The scalar features, in ``SCALARS`` order; ``rate`` is tokens per second of buffered audio."""
    return [logprob, entropy, buffer_s, lead_s, tail_mass, float(prefix), prefix / max(buffer_s, 0.5), float(prefix == 0)]


def view_features(view: StateView) -> tuple[np.ndarray, np.ndarray]:
    """``(hidden, scalars)`` of the proposed token, from what the session shows a policy."""
    c = view.candidate
    if c.hidden is None:
        raise OptionError("a learned policy needs a backend that exposes the decoder's hidden state (Whisper does)")
    tail = max(0, view.frames - round(TAIL_S * 1000 / view.frame_ms))
    buffer_s = view.frames * view.frame_ms / 1000
    lead_s = view.lead_ms / 1000
    values = scalars(c.logprob, c.entropy, buffer_s, lead_s, float(c.attention[tail:].sum()), view.prefix)
    return c.hidden, np.asarray(values, np.float32)


def head_net(hidden_dim: int, width: int = 64):
    """The head: the hidden state through a layer norm and a projection, plus the standardized scalars, then a
    small MLP to one logit (log-odds of WRITE)."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = torch.nn.LayerNorm(hidden_dim)
            self.hidden = torch.nn.Linear(hidden_dim, width)
            self.scalars = torch.nn.Linear(len(SCALARS), width)
            self.mlp = torch.nn.Sequential(torch.nn.GELU(), torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, 1))
            self.register_buffer("scalar_mean", torch.zeros(len(SCALARS)))
            self.register_buffer("scalar_std", torch.ones(len(SCALARS)))

        def forward(self, hidden, values):
            values = (values - self.scalar_mean) / self.scalar_std
            return self.mlp(self.hidden(self.norm(hidden)) + self.scalars(values)).squeeze(-1)

    return Head()


@dataclass
class HeadFile:
    """A loaded head: the network (eval mode) and its card."""

    net: Any
    card: dict
    path: Path

    def write_probability(self, hidden: np.ndarray, values: np.ndarray) -> float:
        import torch

        with torch.inference_mode():
            return float(torch.sigmoid(self.net(torch.from_numpy(np.asarray(hidden, np.float32))[None], torch.from_numpy(values)[None]))[0])

    def check_backend(self, backend) -> None:
        """Refuse a backend other than the one the head was trained for."""
        model = self.card.get("model")
        if model != backend.identity:
            raise OptionError(
                f"head {self.path.stem} was trained for model {model!r}, not {backend.identity!r}: "
                "train one for this model (simulst train-policy) or use its model"
            )


def load_head(name: str, policy: str | None = None) -> HeadFile:
    """Load a head for ``policy`` (None: any), refusing one made for another policy or feature set."""
    from simulst.cards import load_card

    card = load_card(name, SHIPPED, "head", {"features": FEATURES, **({"policy": policy} if policy else {})})
    return HeadFile(card.load_into(head_net(card.data["hidden_dim"], card.data["width"])), card.data, card.path)
