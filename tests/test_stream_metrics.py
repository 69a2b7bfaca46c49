"""Resegmentation by minimum edit distance and StreamLAAL, on constructed cases with known answers."""

import pytest

from simulst.eval import latency
from simulst.eval.stream import resegment, stream_laal


def test_exact_output_is_cut_at_the_reference_boundaries():
    refs = ["Hello there.", "How are you today?", "Fine."]
    words = "hello there how are you today fine".split()
    assert resegment(words, refs) == [(0, 2), (2, 6), (6, 7)]


def test_errors_and_missing_words_still_align():
    refs = ["the cat sat on the mat", "then it slept", "and woke up"]
    words = "the cat sat on mat then he slept and woke up again".split()
    spans = resegment(words, refs)
    assert [" ".join(words[a:b]) for a, b in spans] == ["the cat sat on mat", "then he slept", "and woke up again"]


def test_empty_hypothesis():
    assert resegment([], ["a b", "c"]) == [(0, 0), (0, 0)]


def test_stream_laal_known_value():
    # two sentences at 0-4 s and 10-13 s of the stream; each word emitted 1 s after its own sentence's pace
    segments = [(0.0, 4000.0, "a b c d"), (10000.0, 3000.0, "e f g")]
    words = list("abcdefg")
    delays = [1000, 2000, 3000, 4000, 11000, 12000, 13000]
    score, sentences = stream_laal(words, delays, segments)
    first = latency.laal([1000, 2000, 3000, 4000], 4000, 4)  # = 1000
    second = latency.laal([1000, 2000, 3000], 3000, 3)  # = 1000
    assert sentences == ["a b c d", "e f g"]
    assert first == 1000 and second == 1000
    assert score == pytest.approx(1000)


def test_stream_laal_is_relative_to_each_sentence():
    # the same output emitted late in a long stream: absolute times would give huge AL, StreamLAAL does not
    segments = [(100000.0, 2000.0, "x y")]
    score, _ = stream_laal(["x", "y"], [101000, 102000], segments)
    assert score == pytest.approx(latency.laal([1000, 2000], 2000, 2))
