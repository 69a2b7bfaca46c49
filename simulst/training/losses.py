"""The losses the learned policies' heads train with (REINA's information-gain loss, DAR's regularizer toward a
text policy); formulas in docs/policies.md."""

from __future__ import annotations

from typing import Sequence

import numpy as np


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
