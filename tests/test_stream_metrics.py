"""Resegmentation by minimum edit distance, StreamLAAL, YAAL and LongYAAL, on constructed cases with known answers."""

import pytest

from simulst.eval import latency
from simulst.eval.stream import resegment, stream_latency


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
    spans = resegment(words, [ref for _, _, ref in segments])
    sentences = [" ".join(words[a:b]) for a, b in spans]
    score = stream_latency(spans, delays, segments, 13000.0)["StreamLAAL"]
    first = latency.laal([1000, 2000, 3000, 4000], 4000, 4)  # = 1000
    second = latency.laal([1000, 2000, 3000], 3000, 3)  # = 1000
    assert sentences == ["a b c d", "e f g"]
    assert first == 1000 and second == 1000
    assert score == pytest.approx(1000)


def test_stream_laal_is_relative_to_each_sentence():
    # the same output emitted late in a long stream: absolute times would give huge AL, StreamLAAL does not
    segments = [(100000.0, 2000.0, "x y")]
    metrics = stream_latency(resegment(["x", "y"], ["x y"]), [101000, 102000], segments, 102000.0)
    assert metrics["StreamLAAL"] == pytest.approx(latency.laal([1000, 2000], 2000, 2))


def test_yaal_leaves_out_the_tail_flushed_at_the_end():
    # 4 s of source, 4 reference words; two words during the speech, two flushed at the end
    delays = [1000, 2000, 4000, 4000]
    assert latency.laal(delays, 4000, 4) == pytest.approx((1000 + 1000 + 2000) / 3)  # up to the first word at the end
    assert latency.yaal(delays, 4000, 4) == pytest.approx((1000 + 1000) / 2)  # the words before 4000 only
    assert latency.yaal([4000, 4000], 4000, 2) is None  # nothing before the end: left out
    assert latency.yaal([500, 5000], 4000, 2, cutoff=6000) == pytest.approx((500 + 3000) / 2)  # long-form cutoff


def test_long_yaal_counts_words_after_their_sentence_until_the_recording_ends():
    # sentence 1 (0-2 s) gets its second word at 3 s, after its end but before the recording's end (5 s)
    segments = [(0.0, 2000.0, "a b"), (3000.0, 2000.0, "c d")]
    spans = resegment(list("abcd"), ["a b", "c d"])
    metrics = stream_latency(spans, [1000, 3000, 4000, 5000], segments, 5000.0)
    assert spans == [(0, 2), (2, 4)]
    first = latency.yaal([1000, 3000], 2000, 2, cutoff=5000)  # both words: 1000, 3000 - 1000 -> 1500
    second = latency.yaal([1000, 2000], 2000, 2, cutoff=2000)  # 2000 is the recording's end: (1000) / 1
    assert first == pytest.approx(1500) and second == pytest.approx(1000)
    assert metrics["LongYAAL"] == pytest.approx((1500 + 1000) / 2)
    assert metrics["StreamLAAL"] == pytest.approx((latency.laal([1000, 3000], 2000, 2) + latency.laal([1000, 2000], 2000, 2)) / 2)
