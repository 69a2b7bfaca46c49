"""Latency metrics, as pure functions of one instance's per-word delays (ms).

Formulas and conventions follow SimulEval 1.1.4 (``simuleval/evaluator/scorers/latency_scorer.py``) so that the
same log gives the same numbers (YAAL follows its authors' OmniSTEval): AL and LAAL use the reference length (``|Y|``, words), stop at the first delay
that reaches the source length, and return the first delay when it already exceeds the source; DAL uses the
hypothesis length; ATD uses 300 ms virtual source words and zero-length text words. Computation-aware variants
are the same functions over ``elapsed`` instead of ``delays`` (SimulEval 1.1.4 reports its computation-aware
values under the plain names too, its issue #44; here ``AL`` is always computed from ``delays``).
"""

from __future__ import annotations

from itertools import takewhile
from statistics import mean
from typing import Sequence

Delays = Sequence[float]


def _lagging(delays: Delays, source_length: float, target_length: float) -> float:
    if delays[0] > source_length:
        return delays[0]
    rate = source_length / target_length
    total, tau = 0.0, 0
    for i, d in enumerate(delays):
        total += d - i * rate
        tau = i + 1
        if d >= source_length:
            break
    return total / tau


def al(delays: Delays, source_length: float, reference_length: int) -> float:
    """Average Lagging (Ma et al. 2019), with the reference length as |Y|."""
    return _lagging(delays, source_length, reference_length)


def laal(delays: Delays, source_length: float, reference_length: int) -> float:
    """Length-Adaptive AL (Papi et al. 2022): |Y| is the longer of reference and hypothesis."""
    return _lagging(delays, source_length, max(len(delays), reference_length))


def yaal(delays: Delays, source_length: float, reference_length: int, cutoff: float | None = None) -> float | None:
    """YAAL (Polak et al. 2025): LAAL over only the words emitted before the source ended, so that a tail flushed
    at the end of a segment does not count as simultaneous. ``cutoff`` is that end (default the source length;
    for long-form LongYAAL, the end of the recording). None when the first word came after it: the instance is
    left out of the mean."""
    cutoff = source_length if cutoff is None else cutoff
    rate = source_length / max(len(delays), reference_length)
    lags = [d - i * rate for i, d in enumerate(takewhile(lambda d: d < cutoff, delays))]
    return sum(lags) / len(lags) if lags else None


def ap(delays: Delays, source_length: float, reference_length: int) -> float:
    """Average Proportion (Cho and Esipova 2016), over the reference length as SimulEval does."""
    return sum(delays) / (source_length * reference_length)


def dal(delays: Delays, source_length: float) -> float:
    """Differentiable AL (Arivazhagan et al. 2019) over the hypothesis length."""
    step = source_length / len(delays)
    total, previous = 0.0, 0.0
    for i, g in enumerate(delays):
        g_prime = g if i == 0 else max(g, previous + step)
        total += g_prime - i * step
        previous = g_prime
    return total / len(delays)


def start_offset(delays: Delays) -> float:
    return delays[0]


def end_offset(delays: Delays, source_length: float) -> float:
    return delays[-1] - source_length


def atd(
    delays: Delays, source_length: float, elapsed: Delays | None = None, source_word_ms: float = 300.0,
    durations: Delays | None = None, target_word_ms: float = 300.0,
) -> float:
    """Average Token Delay (Kano et al. 2023) for speech input and text output, or speech output with ``durations``.

    Source chunks are the stretches between distinct delays, cut into virtual words of ``source_word_ms``.
    Text target words have no duration; speech output (one delay and one duration per spoken segment) is cut
    into virtual words of ``target_word_ms`` that play one after another. With ``elapsed``, each word also carries
    the compute time spent since the previous emission, and words queue behind one another (computation-aware).
    """
    compute = [0.0] * len(delays)
    if elapsed is not None and any(elapsed):
        spent = [e - d for e, d in zip(elapsed, delays)]
        compute = [s - p for s, p in zip(spent, [0.0] + spent[:-1])]
    tgt_sizes: list[int] = [0]
    words: list[tuple[float, float, float]] = []  # per target word: delay, length, compute
    if durations is None:  # text: zero-length words; a run of equal delays is one chunk
        previous = None
        for d, c in zip(delays, compute):
            if d != previous:
                tgt_sizes.append(0)
            tgt_sizes[-1] += 1
            words.append((d, 0.0, c))
            previous = d
    else:  # speech: a run of equal delays is one stretch of audio, cut into virtual words
        chunks: list[list[float]] = []
        for d, duration, c in zip(delays, durations, compute):
            if chunks and chunks[-1][0] == d:
                chunks[-1][1] += duration
                chunks[-1][2] += c
            else:
                chunks.append([d, duration, c])
        for d, duration, c in chunks:
            whole, rest = divmod(duration, target_word_ms)
            lengths = [target_word_ms] * int(whole) + ([rest] if rest != 0 else [])
            words += [(d, length, c / len(lengths)) for length in lengths]
            tgt_sizes.append(len(lengths))
    tgt_chunk = [0] + [i for i, size in enumerate(tgt_sizes[1:], 1) for _ in range(size)]
    # source chunks: distinct delays in order, each stretch cut into virtual words
    distinct = list(dict.fromkeys(delays))
    src_sizes: list[int] = [0]
    src_end = [0.0]
    for duration in [b - a for a, b in zip([0.0] + distinct[:-1], distinct)]:
        whole, rest = divmod(duration, source_word_ms)
        lengths = [source_word_ms] * int(whole) + ([rest] if rest != 0 else [])
        src_sizes.append(len(lengths))
        for length in lengths:
            src_end.append(src_end[-1] + length)
    tgt_end = [0.0]
    for d, length, c in words:
        tgt_end.append(max(d, tgt_end[-1]) + length + c)
    lags = []
    for t in range(1, len(tgt_chunk)):
        chunk = tgt_chunk[t]
        ahead = max(0, sum(tgt_sizes[:chunk]) - sum(src_sizes[:chunk]))
        s = min(t - ahead, sum(src_sizes[: chunk + 1]))
        lags.append(tgt_end[t] - src_end[s])
    return float(mean(lags))
