"""NoSE, Normalized Streaming Efficiency (Hirschkind et al., REINA, AAAI 2026): how much of the offline model's
quality a policy keeps across latencies, from the latency-quality points of its sweep.

Computed here as the mean, over latencies from 0 to ``max_latency_ms``, of the best quality the policy reaches
at that latency or less, divided by the offline quality (capped at 1; 0 before its fastest point):

    NoSE = 1/L * integral_0^L min(1, Q*(l) / Q_offline) dl,   Q*(l) = max{ Q_i : latency_i <= l }

A policy that matched offline quality at no latency would score 1; each point of a sweep can only add area.
"""

from __future__ import annotations

import json
from pathlib import Path


def nose(points: list[tuple[float, float]], offline: float, max_latency_ms: float = 4000.0) -> float:
    """``points``: (latency ms, quality) of one policy; ``offline``: the offline run's quality."""
    if offline <= 0:
        raise ValueError("the offline quality must be positive")
    steps = sorted((max(0.0, latency), quality) for latency, quality in points if latency < max_latency_ms)
    area, best = 0.0, 0.0
    for i, (latency, quality) in enumerate(steps):
        best = max(best, min(1.0, quality / offline))
        end = steps[i + 1][0] if i + 1 < len(steps) else max_latency_ms
        area += best * (end - latency)
    return area / max_latency_ms


def run_points(runs: list[Path], latency: str = "LAAL", quality: str = "BLEU") -> list[tuple[float, float]]:
    points = []
    for run in runs:
        overall = json.loads((run / "scores.json").read_text())["overall"]
        if latency in overall and quality in overall:
            points.append((overall[latency], overall[quality]))
    return points


def offline_quality(run: str | Path, quality: str = "BLEU") -> float:
    return json.loads((Path(run) / "scores.json").read_text())["overall"][quality]
