"""Long-form scoring: resegment a whole-stream output against reference sentences by minimum word edit distance
(the idea of mwerSegmenter, Matusov et al. 2005), then StreamLAAL (Papi et al. 2024): LAAL of each sentence
with delays taken relative to the sentence's start in the stream, and LongYAAL."""

from __future__ import annotations

import re
from statistics import mean
from typing import Sequence

from simulst.eval import latency


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def resegment(hyp_words: Sequence[str], references: Sequence[str]) -> list[tuple[int, int]]:
    """``[(start, end), ...]``: the hypothesis word span aligned to each reference, by one Levenshtein alignment
    of the hypothesis against the concatenated references (case and punctuation ignored)."""
    hyp = [_norm(w) for w in hyp_words]
    ref, ends = [], []
    for sentence in references:
        ref += [_norm(w) for w in sentence.split()]
        ends.append(len(ref))
    n, m = len(hyp), len(ref)
    # cost[i][j]: distance between hyp[:i] and ref[:j]; rows kept for the backtrace
    cost = [list(range(m + 1))]
    for i in range(1, n + 1):
        prev, row = cost[-1], [i] + [0] * m
        h = hyp[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (h != ref[j - 1]))
        cost.append(row)
    # backtrace: for each reference position j, the hypothesis position aligned when ref[:j] is consumed
    cut_at = [0] * (m + 1)
    i, j = n, m
    cut_at[m] = n
    while j > 0:
        if i > 0 and cost[i][j] == cost[i - 1][j - 1] + (hyp[i - 1] != ref[j - 1]):
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
            continue
        else:
            j -= 1
        cut_at[j] = i
    spans, start = [], 0
    for k, end in enumerate(ends):
        stop = n if k == len(ends) - 1 else max(start, cut_at[end])
        spans.append((start, stop))
        start = stop
    return spans


def stream_latency(
    spans: Sequence[tuple[int, int]],
    stamps: Sequence[float],
    segments: Sequence[tuple[float, float, str]],
    stream_length: float,
) -> dict[str, float]:
    """StreamLAAL and LongYAAL over ``segments`` = ``[(offset_ms, duration_ms, reference), ...]``, given the
    hypothesis words' ``spans`` from ``resegment``. ``stamps`` are per-word delays (or elapsed times) in stream
    time. LongYAAL is YAAL per sentence with the cutoff at the end of the recording, not of the sentence
    (Polak et al. 2025)."""
    laal, long_yaal = [], []
    for (start, stop), (offset, duration, reference) in zip(spans, segments):
        if stop > start:
            relative = [s - offset for s in stamps[start:stop]]
            laal.append(latency.laal(relative, duration, len(reference.split(" "))))
            score = latency.yaal(relative, duration, len(reference.split(" ")), cutoff=stream_length - offset)
            if score is not None:
                long_yaal.append(score)
    metrics = {"StreamLAAL": float(mean(laal)) if laal else 0.0}
    if long_yaal:
        metrics["LongYAAL"] = float(mean(long_yaal))
    return metrics


def long_form(instances: list[dict]) -> bool:
    """Whether a run is long-form: every instance has reference ``segments`` (scored after resegmentation)."""
    return bool(instances) and all(i.get("segments") for i in instances)


def sentences(instance: dict) -> list[dict]:
    """A long-form instance (one with ``segments``) as one instance per reference sentence: its resegmented words,
    their delays (and elapsed times) relative to the sentence's start, the sentence's duration as the source
    length. A sentence's LAAL is then its term of StreamLAAL; ids are ``ID#k``."""
    words = instance["prediction"].split()
    segments = instance["segments"]
    spans = resegment(words, [reference for _, _, reference in segments])
    rows = []
    for k, ((start, stop), (offset, duration, reference)) in enumerate(zip(spans, segments)):
        row = {**instance, "id": f"{instance['id']}#{k}", "prediction": " ".join(words[start:stop]), "reference": reference, "source_length": duration}
        for key in ("delays", "elapsed", "display_delays"):
            if instance.get(key):
                row[key] = [stamp - offset for stamp in instance[key][start:stop]]
        del row["segments"]
        rows.append(row)
    return rows
