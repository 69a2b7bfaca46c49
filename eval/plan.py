"""Planning and running several evaluations at once: the points of a sweep (one option's values) or of a
comparison (whole systems side by side), each into an output folder of its own, with one summary table."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from simulst import build, flags
from simulst.build import ModelSpec, SessionSpec
from simulst.errors import OptionError

SUMMARY = ["BLEU", "LAAL", "LAAL_CA", "AL", "RTF"]
COMPARED = ["WER", "DisplayLAAL", "NE", "Revisions", "UpdateMs", "UpdateMs_p95", "EncodeMs", "DecoderSteps"]
"""The summary table's columns (a comparison adds the re-translation and cost figures)."""


@dataclass(frozen=True)
class Point:
    """One evaluation: a model and a session spec, written to ``output``."""

    output: Path
    model: ModelSpec
    spec: SessionSpec


def sweep(model: ModelSpec, spec: SessionSpec, text: str, output: str | Path) -> list[Point]:
    """``KEY=V1,V2,...``: one point per value, in ``OUTPUT/KEY=V``; KEY is an option's flag dest, a policy's
    options as POLICY.FIELD (``alignatt.threshold_ms=200,400``, ``chunk_ms=500,1000``)."""
    key, _, values = text.partition("=")
    if key not in flags.keys(model, spec) or not values:
        raise OptionError(f"--sweep takes KEY=V1,V2,... with KEY one of: {', '.join(flags.keys(model, spec))}")
    return [Point(Path(output) / f"{key}={value}", *flags.replace(model, spec, key, value)) for value in values.split(",")]


def compare(systems: list[str], parse: Callable[[list[str]], tuple[ModelSpec, SessionSpec]], output: str | Path) -> list[Point]:
    """``NAME=FLAGS`` each: one point per system, in ``OUTPUT/NAME``; ``parse(flags)`` gives the model and session
    of the run's flags with FLAGS on top (the command line's parser)."""
    import shlex

    points = []
    for system in systems:
        name, sep, text = system.partition("=")
        if not sep or not name or "/" in name:
            raise OptionError(f"--compare takes NAME=FLAGS (e.g. aa='--policy alignatt'), not {system!r}")
        points.append(Point(Path(output) / name, *parse(shlex.split(text))))
    return points


def run(points: list[Point], rows: list, computation_aware: bool = False, executor: str = "local", workers: int = 2,
        address: str | None = None, compared: bool = False, progress: TextIO | None = None) -> list[str]:
    """Evaluate every point on ``rows`` (here, or on Ray actors); print each point's scores, progress on
    ``progress`` (standard error by default); returns the summary table's lines (a header, a line per point)."""
    from simulst.eval.run import evaluate
    from simulst.eval.scores import format_scores

    progress = progress or sys.stderr

    metrics = SUMMARY + (COMPARED if compared else [])
    summary = ["\t".join(["point", *metrics])]

    def scored(scores: dict, point: Point) -> None:
        print(format_scores(scores))
        print(f"wrote {point.output}/instances.log, scores.tsv, scores.json", file=progress)
        o = scores["overall"]
        summary.append("\t".join([point.output.name] + [f"{o.get(m, float('nan')):.3f}" for m in metrics]))

    if executor == "ray":
        from simulst.eval.distributed import evaluate_on_ray

        for scores, point in zip(evaluate_on_ray(points, rows, workers, address, computation_aware, progress), points):
            scored(scores, point)
    else:
        for point in points:
            backend = build.model(point.model)
            scored(evaluate(rows, backend, build.factory(backend, point.spec), point.spec.options, point.output, computation_aware, progress), point)
    return summary
