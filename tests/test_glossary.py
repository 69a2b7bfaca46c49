import numpy as np
import torch

from simulst.models.base import PIECE_NATS, WORD_NATS, glossary_choice

WORD_START = np.array([True, True, False, False, True, False, True])
"""Tokens 0, 1, 4, 6 start a word; 2, 3, 5 continue one."""
KOWLOON = [1, 2, 3]  # " K", "ow", "loon"
HARBOUR = [4, 5]


def logprobs(**values) -> torch.Tensor:
    """Log-probabilities over the 7 tokens: -10 but where given (t0=..., t1=...)."""
    out = torch.full((7,), -10.0)
    for name, value in values.items():
        out[int(name[1:])] = value
    return out


def test_a_term_begins_where_the_model_nearly_says_its_first_word():
    assert glossary_choice(logprobs(t0=-1.0, t1=-1.0 - WORD_NATS + 0.01), [], [KOWLOON], WORD_START) == 1
    assert glossary_choice(logprobs(t0=-1.0, t1=-1.0 - WORD_NATS - 0.01), [], [KOWLOON], WORD_START) is None


def test_a_begun_term_goes_on_with_pieces_the_model_finds_far_less_likely():
    assert glossary_choice(logprobs(t5=-0.1, t2=-0.1 - PIECE_NATS + 0.01), [0, 1], [KOWLOON], WORD_START) == 2
    assert glossary_choice(logprobs(t5=-0.1, t3=-4.0), [0, 1, 2], [KOWLOON], WORD_START) == 3
    assert glossary_choice(logprobs(t5=-0.1, t3=-0.1 - PIECE_NATS - 0.01), [1, 2], [KOWLOON], WORD_START) is None
    assert glossary_choice(logprobs(t5=-0.1, t3=-1.0), [1, 2, 3], [KOWLOON], WORD_START) is None  # written whole: done


def test_the_longest_begun_term_wins():
    both = [HARBOUR, KOWLOON]
    assert glossary_choice(logprobs(t4=-0.5, t2=-2.0), [1], both, WORD_START) == 2
    assert glossary_choice(logprobs(t4=-0.5, t2=-9.0), [1], both, WORD_START) == 4  # "ow" too unlikely: Harbour starts
