"""Whether two runs of the same rows differ by more than the rows' own noise: paired bootstrap resampling (Koehn,
EMNLP 2004) of corpus quality (BLEU; WER for transcription) and of mean latency.

Corpus BLEU of a handful of rows moves by a point with the wording of one long row; resampling the rows with
replacement, the same draw for both runs, gives the spread of the difference that the choice of rows alone makes.
A long-form run (instances with ``segments``) is resampled by its reference sentences, as it is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulst.eval import quality
from simulst.eval.scores import instance_latency
from simulst.eval.stream import long_form, sentences

SAMPLES = 1000


@dataclass(frozen=True)
class Difference:
    """``other - base`` of one metric: on the rows as they are, its 95% interval over resamples, and ``p``: the
    share of resamples where it is 0 or of the other sign (small: the difference is not the rows' noise)."""

    metric: str
    base: float
    other: float
    low: float
    high: float
    p: float

    @property
    def delta(self) -> float:
        return self.other - self.base


class _Rows:
    """One run's per-row counts, in a given row order: corpus quality (BLEU's n-gram matches and lengths; WER's
    errors and words; BLEU for transcripts too without ``wer``) and ``latency`` of any resample of the rows
    (``draw``: row indices)."""

    def __init__(self, instances: list[dict], latency: str = "LAAL", wer: bool = True):
        hyps = [i["prediction"] for i in instances]
        refs = [i.get("reference", "") for i in instances]
        self.latencies = np.array([instance_latency(i).get(latency, np.nan) if i["delays"] else np.nan for i in instances])  # nothing written: no latency
        if instances and all(i.get("task") == "transcribe" for i in instances):  # compared as eval.scores does
            hyps, refs = [quality.normalize(h) for h in hyps], [quality.normalize(r) for r in refs]
            if wer:
                self.metric = "WER"
                self.counts = np.array([quality.word_errors(h, r) for h, r in zip(hyps, refs)], np.int64)
                return
        langs = {i.get("tgt_lang") for i in instances}
        self._bleu = quality.bleu_metric(langs.pop() if len(langs) == 1 else None, effective_order=True)
        rows = [self._bleu.sentence_score(h, [r]) for h, r in zip(hyps, refs)]
        self.metric, self.counts = "BLEU", np.array([[*s.counts, *s.totals, s.sys_len, s.ref_len] for s in rows], np.int64)

    def quality(self, draw=slice(None)) -> float:
        total = self.counts[draw].sum(0)
        if self.metric == "WER":
            return 100.0 * total[0] / max(total[1], 1)
        n = self._bleu.max_ngram_order
        return self._bleu.compute_bleu(total[:n].tolist(), total[n : 2 * n].tolist(), int(total[-2]), int(total[-1]), "exp").score

    def latency(self, draw=slice(None)) -> float:
        return float(np.nanmean(self.latencies[draw]))


def _rows(run: list[dict]) -> list[dict]:
    """A run's rows: its instances, or a long-form run's reference sentences after resegmentation."""
    return [row for i in run for row in sentences(i)] if long_form(run) else run


def _matched(runs: list[list[dict]]) -> list[list[dict]]:
    """The runs' rows that every run holds (matched by ``id``), in the first run's order."""
    runs = [_rows(run) for run in runs]
    by_id = [{i["id"]: i for i in run} for run in runs]
    ids = [i["id"] for i in runs[0] if all(i["id"] in other for other in by_id)]
    if len(ids) < 2:
        raise ValueError("the runs share fewer than 2 rows (matched by id)")
    return [[run[i] for i in ids] for run in by_id]


def _difference(metric: str, base: float, other: float, deltas: np.ndarray) -> Difference:
    deltas = deltas[~np.isnan(deltas)]
    if np.isnan(base) or np.isnan(other) or not len(deltas):
        raise ValueError(f"{metric} is not defined on these rows")
    sign = np.sign(other - base)
    p = float(np.mean(deltas * sign <= 0)) if sign else 1.0
    return Difference(metric, base, other, float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5)), p)


def _draws(rows: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, rows, (samples, rows))


def paired_bootstrap(base: list[dict], other: list[dict], latency: str = "LAAL", samples: int = SAMPLES, seed: int = 0) -> list[Difference]:
    """Quality and ``latency`` of ``other`` against ``base`` over the rows both hold (matched by ``id``)."""
    a, b = (_Rows(run, latency) for run in _matched([base, other]))
    draws = _draws(len(a.counts), samples, seed)
    return [
        _difference(a.metric, a.quality(), b.quality(), np.array([b.quality(d) - a.quality(d) for d in draws])),
        _difference(f"Stream{latency}/sentence" if long_form(base) else latency, a.latency(), b.latency(), np.array([b.latency(d) - a.latency(d) for d in draws])),
    ]


def nose_bootstrap(base: list[list[dict]], other: list[list[dict]], offline: list[dict], max_latency_ms: float = 4000.0, samples: int = SAMPLES, seed: int = 0) -> Difference:
    """NoSE (``eval.nose``) of the sweep ``other`` (its points' instances) against the sweep ``base``, over the rows
    every point and the offline run hold, each resample of the rows scoring every point and the offline run."""
    from simulst.eval.nose import nose

    matched = _matched([offline, *base, *other])
    rows = [_Rows(run, wer=False) for run in matched]
    reference, a, b = rows[0], rows[1 : 1 + len(base)], rows[1 + len(base) :]

    def value(points: list[_Rows], draw=slice(None)) -> float:
        offline = reference.quality(draw)  # a resample of a few rows may have no 4-gram right: not counted
        return nose([(p.latency(draw), p.quality(draw)) for p in points], offline, max_latency_ms) if offline > 0 else np.nan

    draws = _draws(len(reference.counts), samples, seed)
    return _difference("NoSE", value(a), value(b), np.array([value(b, d) - value(a, d) for d in draws]))
