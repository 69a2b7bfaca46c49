"""DAR: decision-attentive regularization (Zaidi et al. 2021, "Decision Attentive Regularization to Improve
Simultaneous Speech Translation Systems"), adapted to a head over a frozen offline model.

The original trains the whole model; here a small head (the REINA foundation: same features, same head files)
learns READ/WRITE per (truncation, target token) from REINA's information-gain loss plus a regularizer that
pulls its decisions toward those of a simultaneous *text* policy run on the source transcript as its words
arrive: when to write depends on the language pair's word order, which text shows more cleanly than audio.
Formulas in docs/policies.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulst.options import opt
from simulst.policies.reina import HEAD_HELP, Reina, ReinaOptions

SHIPPED_HEAD = "dar-cv-whisper-base"


@dataclass(frozen=True)
class DarOptions(ReinaOptions):
    """DAR (a head trained by simulst train-policy dar; the shipped one is for the embedded whisper-base, X->en)."""

    head: str = opt(SHIPPED_HEAD, HEAD_HELP)


class Dar(Reina):
    """Decides like REINA (the head's write probability against a threshold); only the head's training differs."""

    Options = DarOptions
    kind = "dar"
