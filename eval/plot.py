"""Plots: the latency-quality curve of runs (BLEU vs LAAL, with and without computation) and per-instance
read/write timelines (source time against emitted words, as in "Visualization: the missing factor in SimulST")."""

from __future__ import annotations

import json
from pathlib import Path

from simulst.errors import SimulstError
from simulst.eval.instances import read_log


def run_dirs(paths: list[str | Path]) -> list[Path]:
    """Output directories among ``paths``: each one itself, or the runs of a sweep below it."""
    found = []
    for path in map(Path, paths):
        if (path / "scores.json").exists():
            found.append(path)
        else:
            found += sorted(p.parent for p in path.glob("*/scores.json"))
    if not found:
        raise SimulstError(f"no scores.json in {', '.join(map(str, paths))} (run simulst eval first)")
    return found


def _save(fig, output: Path, name: str) -> list[Path]:
    written = []
    for ext in ("png", "svg"):
        target = output / f"{name}.{ext}"
        fig.savefig(target, dpi=120, bbox_inches="tight")
        written.append(target)
    return written


def _point(run: Path) -> tuple[str, float, float | None, float | None]:
    overall = json.loads((run / "scores.json").read_text())["overall"]
    return run.name, overall["BLEU"], overall.get("LAAL"), overall.get("LAAL_CA")


def latency_quality(groups: dict[str, list[Path]], output: Path, offline: str | Path | None = None, nose_max_ms: float = 4000.0) -> list[Path]:
    """One curve per group (a policy: a sweep or a run). A single group also gets its computation-aware curve;
    with ``offline``, its BLEU is drawn and every group's NoSE is in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simulst.eval.nose import nose, offline_quality, run_points

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    single = len(groups) == 1
    for label, runs in groups.items():
        points = sorted((_point(r) for r in runs), key=lambda p: p[2] or 0)
        if offline is not None:
            label = f"{label} (NoSE {nose(run_points(runs), offline_quality(offline), nose_max_ms):.3f})"
        curves = ((2, "o-", "LAAL (computation-unaware)"), (3, "s--", "LAAL_CA (computation-aware)")) if single else ((2, "o-", label),)
        for key, style, name in curves:
            xs = [p[key] / 1000 for p in points if p[key] is not None]
            ys = [p[1] for p in points if p[key] is not None]
            ax.plot(xs, ys, style, label=name, markersize=4)
            if single:
                for p in points:
                    if p[key] is not None:
                        ax.annotate(p[0], (p[key] / 1000, p[1]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if offline is not None:
        ax.axhline(offline_quality(offline), color="grey", linestyle=":", linewidth=1, label="offline")
    ax.set_xlabel("LAAL (s)" if not single else "latency (s)")
    ax.set_ylabel("BLEU")
    ax.set_title("latency-quality")
    ax.grid(alpha=0.3)
    if len(groups) > 4:  # beside the axes, where it hides no point
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    else:
        ax.legend(loc="lower right", fontsize=7)
    written = _save(fig, output, "latency-quality")
    plt.close(fig)
    return written


def timelines(run: Path, output: Path, limit: int = 4) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for ins in read_log(run / "instances.log")[:limit]:
        fig, ax = plt.subplots(figsize=(6, 4))
        words = range(1, len(ins["delays"]) + 1)
        ax.step([d / 1000 for d in ins["delays"]], words, where="post", label="emitted (source time)")
        if ins.get("elapsed"):
            ax.step([e / 1000 for e in ins["elapsed"]], words, where="post", linestyle="--", label="emitted (with compute)")
        ax.axvline(ins["source_length"] / 1000, color="grey", linewidth=0.8, label="end of source")
        ax.plot([0, ins["source_length"] / 1000], [0, len(ins.get("reference", "").split())], ":", color="grey", label="ideal (reference pace)")
        ax.set_xlabel("source time (s)")
        ax.set_ylabel("target words")
        ax.set_title(f"{ins.get('id', ins['index'])}: read/write timeline", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        written += _save(fig, output, f"timeline-{run.name}-{ins.get('id', ins['index'])}")
        plt.close(fig)
    return written


def plot(paths: list[str | Path], output: str | Path, limit: int = 4, offline: str | Path | None = None, nose_max_ms: float = 4000.0) -> list[Path]:
    groups = {Path(path).name: run_dirs([path]) for path in paths}
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = latency_quality(groups, output, offline, nose_max_ms)
    for run in (r for runs in groups.values() for r in runs):
        written += timelines(run, output, limit)
    return written
