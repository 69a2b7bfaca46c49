"""Whether two runs of the same rows differ by more than the rows' own noise: paired bootstrap resampling (Koehn,
EMNLP 2004) of corpus quality (BLEU; WER for transcription) and of mean latency.

Corpus BLEU of a handful of rows moves by a point with the wording of one long row; resampling the rows with
replacement, the same draw for both runs, gives the spread of the difference that the choice of rows alone makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulst.eval import quality
from simulst.eval.scores import instance_latency

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


def _quality_stats(instances: list[dict]) -> tuple[str, np.ndarray, callable]:
    """Per row, the counts corpus quality sums (BLEU's n-gram matches and lengths; WER's errors and words), and
    the function from summed counts to the score."""
    hyps = [i["prediction"] for i in instances]
    refs = [i.get("reference", "") for i in instances]
    if instances and all(i.get("task") == "transcribe" for i in instances):
        stats = np.array([[quality.edit_distance(h.split(), r.split()), len(r.split())] for h, r in ((quality.normalize(h), quality.normalize(r)) for h, r in zip(hyps, refs))], float)
        return "WER", stats, lambda s: 100.0 * s[0] / max(s[1], 1)
    from sacrebleu.metrics import BLEU

    langs = {i.get("tgt_lang") for i in instances}
    metric = BLEU(tokenize=quality.tokenizer_for(langs.pop() if len(langs) == 1 else None), effective_order=True)
    rows = [metric.sentence_score(h, [r]) for h, r in zip(hyps, refs)]
    stats = np.array([[*s.counts, *s.totals, s.sys_len, s.ref_len] for s in rows], np.int64)
    order = metric.max_ngram_order
    return "BLEU", stats, lambda s: BLEU.compute_bleu(s[:order].tolist(), s[order : 2 * order].tolist(), int(s[-2]), int(s[-1]), "exp").score


def paired_bootstrap(base: list[dict], other: list[dict], latency: str = "LAAL", samples: int = SAMPLES, seed: int = 0) -> list[Difference]:
    """Quality and ``latency`` of ``other`` against ``base`` over the rows both hold (matched by ``id``)."""
    by_id = {i["id"]: i for i in other}
    pairs = [(i, by_id[i["id"]]) for i in base if i["id"] in by_id]
    if len(pairs) < 2:
        raise ValueError("the two runs share fewer than 2 rows (matched by id)")
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    name, stats_a, score = _quality_stats(a)
    stats_b = _quality_stats(b)[1]
    lat_a = np.array([instance_latency(i).get(latency, np.nan) for i in a])
    lat_b = np.array([instance_latency(i).get(latency, np.nan) for i in b])
    draws = np.random.default_rng(seed).integers(0, len(pairs), (samples, len(pairs)))
    results = []
    for metric, whole, resampled in (
        (name, (score(stats_a.sum(0)), score(stats_b.sum(0))), [score(stats_b[d].sum(0)) - score(stats_a[d].sum(0)) for d in draws]),
        (latency, (float(np.nanmean(lat_a)), float(np.nanmean(lat_b))), [np.nanmean(lat_b[d]) - np.nanmean(lat_a[d]) for d in draws]),
    ):
        deltas = np.asarray(resampled)
        sign = np.sign(whole[1] - whole[0])
        p = float(np.mean(deltas * sign <= 0)) if sign else 1.0
        results.append(Difference(metric, whole[0], whole[1], float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5)), p))
    return results
