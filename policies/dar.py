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
from typing import Sequence

import numpy as np

from simulst.options import opt
from simulst.policies.reina import Reina

SHIPPED_HEAD = "dar-whisper-base"


@dataclass(frozen=True)
class DarOptions:
    """DAR (a head trained by simulst train-policy dar; the shipped one is for the embedded whisper-base, X->en)."""

    threshold: float = opt(0.5, "WRITE when the head's write probability reaches this (lower: faster)")
    head: str = opt(SHIPPED_HEAD, "the head: a shipped name or the path of a NAME.json card beside NAME.pt")


class Dar(Reina):
    """Decides like REINA (the head's write probability against a threshold); only the head's training differs."""

    Options = DarOptions
    kind = "dar"


def text_waitk_times(source_end_ms: Sequence[float], target_word: Sequence[int], k: int, end_ms: float) -> np.ndarray:
    """When a text wait-k policy, reading the source words as they end, writes each target token.

    Target word ``i`` (0-based) is written once ``g(i) = min(k + floor(i * |x| / |y|), |x|)`` source words have
    been read (wait-k with the catch-up rate of unequal lengths); a token is written with its word. Before the
    source ends that is the end time of source word ``g(i)``; a policy that needs every word waits for ``end_ms``."""
    words_in, words_out = len(source_end_ms), int(max(target_word)) + 1 if len(target_word) else 0
    if not words_in:
        return np.full(len(target_word), end_ms, np.float32)
    rate = words_in / max(words_out, 1)
    needed = np.minimum(k + np.floor(np.asarray(target_word) * rate).astype(int), words_in)
    times = np.asarray(source_end_ms, np.float32)[needed - 1]
    return np.where(needed >= words_in, end_ms, times).astype(np.float32)


def first_write_nll(logits, chain, target):
    """``-log q(target)`` per chain, where ``q`` is the distribution of the first WRITE along a token's truncations.

    ``chain``: for each sample (sorted by chain, then truncation), its chain's index; ``target``: for each chain,
    the position in it of the truncation the text policy writes at, or its length (it writes after the last one):
    ``q(i) = pi_i * prod_{j<i} (1 - pi_j)``, ``q(end) = prod_j (1 - pi_j)``."""
    import torch
    import torch.nn.functional as F

    keep_reading = F.logsigmoid(-logits)
    chains = int(chain.max()) + 1 if len(chain) else 0
    starts = torch.zeros(chains, dtype=torch.long)
    lengths = torch.bincount(chain, minlength=chains)
    starts[1:] = torch.cumsum(lengths, 0)[:-1]
    before = torch.cumsum(keep_reading, 0) - keep_reading  # exclusive running sum over all samples
    offset = before[starts]  # what earlier chains contributed
    total_in_chain = torch.zeros(chains).index_add(0, chain, keep_reading)
    at = (starts + target.clamp(max=lengths - 1)).clamp(min=0)
    write_there = F.logsigmoid(logits[at]) + before[at] - offset
    log_q = torch.where(target >= lengths, total_in_chain, write_there)
    return -log_q.mean() if chains else logits.sum() * 0
