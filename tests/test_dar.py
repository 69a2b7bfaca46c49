"""DAR: word times from attention, a text wait-k policy mapped to source time, the decision-attentive regularizer."""

import math

import numpy as np
import pytest
import torch

from simulst.training.timing import Word, dtw, token_starts, words_from_tokens
from simulst.training.losses import first_write_nll, text_waitk_times


def test_word_times_from_a_constructed_attention_matrix():
    """Five tokens, each attending its own 8 frames (20 ms each), blurred into the frames before: DTW puts each
    token at the start of its block (within a frame: the path steps down where two tokens share a frame);
    tokens without a leading space join the word before."""
    scores = np.zeros((5, 40))
    for t in range(5):
        scores[t, 8 * t : 8 * t + 8] = 1.0
        scores[t, max(0, 8 * t - 2) : 8 * t] = 0.4
    starts = token_starts(scores)
    assert np.abs(starts - [0, 8, 16, 24, 32]).max() <= 1
    words = words_from_tokens([" Guten", " Mor", "gen", " liebe", " Leute"], [0, 160, 320, 480, 640], 800.0)
    assert words == [Word("Guten", 0, 160), Word("Morgen", 160, 480), Word("liebe", 480, 640), Word("Leute", 640, 800)]


def test_dtw_path_is_monotonic_and_complete():
    rows, cols = dtw(np.random.default_rng(0).random((6, 30)))
    assert (rows[0], cols[0], rows[-1], cols[-1]) == (0, 0, 5, 29)
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(cols) >= 0) and np.all(np.diff(rows) + np.diff(cols) >= 1)


def test_text_waitk_decisions_mapped_to_source_time():
    """6 source words ending every 500 ms, 4 target words (the first of two tokens): wait-3 with the catch-up
    rate 1.5 writes target word i after source word min(3 + floor(1.5 i), 6)."""
    ends = [500, 1000, 1500, 2000, 2500, 3000]
    target_word = [0, 0, 1, 2, 3]
    times = text_waitk_times(ends, target_word, k=3, end_ms=3200)
    # word 0 after 3 words (1500), word 1 after 4 (2000), word 2 after 6 = all (end), word 3 after all (end)
    assert times.tolist() == [1500, 1500, 2000, 3200, 3200]
    assert text_waitk_times([], [0, 1], 3, 900).tolist() == [900, 900]


def test_first_write_regularizer_by_hand():
    """Two tokens over three truncations each. Token 0: the text policy writes at the second truncation,
    -log q = -(log(1 - p0) + log p1); token 1: only after the last one, -log q = -sum log(1 - p_i)."""
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5, 0.0])
    p = torch.sigmoid(logits)
    chain = torch.tensor([0, 0, 0, 1, 1, 1])
    target = torch.tensor([1, 3])
    expected = -(math.log(1 - p[0]) + math.log(p[1])) - (math.log(1 - p[3]) + math.log(1 - p[4]) + math.log(1 - p[5]))
    assert float(first_write_nll(logits, chain, target)) == pytest.approx(expected / 2)
    # writing exactly where the text policy writes is what the regularizer rewards
    sharp = torch.tensor([-9.0, 9.0, 9.0, -9.0, -9.0, -9.0])
    assert float(first_write_nll(sharp, chain, target)) < 1e-3
