"""``simulst eval``, ``score``, ``plot`` and ``join-clips``: evaluation runs, their scores and figures."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulst.cli.common import add_model_flags, specs
from simulst.errors import SimulstError


def add_commands(sub) -> None:
    _add_eval(sub)
    _add_score(sub)
    _add_plot(sub)
    _add_join(sub)


def _add_eval(sub) -> None:
    ev = sub.add_parser(
        "eval",
        help="run a data set through a model and policy; write instances.log, scores.tsv, scores.json",
        description="Stream every row of a data TSV (id audio duration src_lang tgt_lang source reference) or of "
        "SimulEval --source/--target lists through the same session as 'translate', and score quality (BLEU, chrF, "
        "WER for transcription) and latency (AL, LAAL, AP, DAL, ATD, StartOffset, EndOffset from source times; "
        "the _CA variants from source time plus compute time). Rows in directions the model cannot do are skipped "
        "with a message. A relative --data path that is not found here is looked up in the development data "
        "($SIMULST_DEV_DATA, default ../shared/data): --data fleurs/fleurs.tsv.",
    )
    ev.add_argument("--data", nargs="+", help="data TSV(s), or a long-form NAME.segments.tsv beside its NAME.flac (scored with StreamLAAL)")
    ev.add_argument("--source", help="SimulEval-style list of audio paths (with --target)")
    ev.add_argument("--target", help="SimulEval-style list of references (with --source)")
    ev.add_argument("--output", required=True, help="output directory")
    ev.add_argument("--directions", help="only these directions, comma-separated (e.g. de-en,fr-en)")
    ev.add_argument("--limit", type=int, help="only the first N rows (after --directions)")
    ev.add_argument("--computation-aware", action="store_true", help="also list the _CA metrics in scores.tsv (scores.json always has them)")
    ev.add_argument("--speech", action="store_true", help="also speak the output and score the speech (ASR-BLEU, offsets, discontinuity)")
    ev.add_argument(
        "--sweep",
        help="KEY=V1,V2,...: one run per value, in OUTPUT/KEY=V, plus OUTPUT/sweep.tsv; KEY is any option's name, "
        "policy options as POLICY.FIELD (e.g. alignatt.threshold_ms=200,400,800 or chunk_ms=500,1000)",
    )
    ev.add_argument(
        "--compare", nargs="+", metavar="NAME=FLAGS",
        help="one run per system, in OUTPUT/NAME, plus OUTPUT/compare.tsv; FLAGS are this command's flags that "
        "differ from the rest of the command line, e.g. aa='--policy alignatt' rt='--policy retranslate --no-draft' "
        "nar='--policy retranslate --backend nar'",
    )
    ev.add_argument(
        "--executor", choices=["local", "ray"], default="local",
        help="local: rows one after another here; ray: rows and sweep points on Ray actors that each load the model "
        "once, results gathered in input order (pip install 'simulst[ray]'; docs/scaling.md)",
    )
    ev.add_argument("--workers", type=int, default=2, help="ray: actors (each takes one CPU and loads the model once; default 2)")
    ev.add_argument("--address", help="ray: the cluster to join (auto, or HOST:PORT); default: a local Ray started for this run")
    add_model_flags(ev, speech=True)
    ev.set_defaults(run=run_eval, parser=ev)


def run_eval(ns: argparse.Namespace) -> int:
    from simulst.eval import plan

    rows = _rows(ns)
    model, spec = specs(ns, speak=ns.speech)
    if ns.sweep:
        points = plan.sweep(model, spec, ns.sweep, ns.output)
    elif ns.compare:
        points = plan.compare(ns.compare, lambda extra: _parse_on_top(ns, extra), ns.output)
    else:
        points = [plan.Point(Path(ns.output), model, spec)]
    summary = plan.run(points, rows, ns.computation_aware, ns.executor, ns.workers, ns.address, compared=bool(ns.compare))
    if ns.sweep or ns.compare:
        (Path(ns.output) / ("sweep.tsv" if ns.sweep else "compare.tsv")).write_text("\n".join(summary) + "\n")
        print("\n".join(summary))
    return 0


def _rows(ns: argparse.Namespace) -> list:
    from simulst.eval.data import read_lists, read_tsv

    if ns.data:
        rows = [row for path in ns.data for row in read_tsv(path, ns.src_lang, ns.tgt_lang)]
    elif ns.source and ns.target:
        rows = read_lists(ns.source, ns.target, ns.src_lang, ns.tgt_lang)
    else:
        raise SimulstError("give --data TSV, or --source and --target list files")
    if ns.directions:
        wanted = set(ns.directions.split(","))
        rows = [r for r in rows if r.direction in wanted]
    rows = rows[: ns.limit] if ns.limit else rows
    if not rows:
        raise SimulstError("no rows to evaluate (check --directions and --limit)")
    return rows


def _parse_on_top(ns: argparse.Namespace, extra: list[str]):
    """The model and session of this command line with ``extra`` flags parsed on top (a compared system)."""
    point = argparse.Namespace(**vars(ns))
    try:
        ns.parser.parse_args(["--output", ns.output, *extra], namespace=point)
    except SystemExit:
        raise SimulstError(f"--compare: cannot parse {' '.join(extra)!r}") from None
    return specs(point, speak=point.speech)


def _add_score(sub) -> None:
    sc = sub.add_parser(
        "score",
        help="recompute every metric of an output directory or a SimulEval instances.log",
        description="Read an instances log (ours or SimulEval's) and write scores.tsv and scores.json beside it.",
    )
    sc.add_argument("path", help="an output directory or an instances.log file")
    sc.add_argument("--computation-aware", action="store_true", help="also list the _CA metrics in scores.tsv")
    sc.add_argument("--offline", help="the offline run of the same rows: also report NoSE of the runs under PATH (a sweep)")
    sc.add_argument("--nose-max-ms", type=float, default=4000.0, help="NoSE averages over LAAL from 0 to this (default: 4000)")
    sc.add_argument(
        "--against", metavar="RUN", help="another run of the same rows (an output directory or instances.log): each run's "
        "difference from it in quality and LAAL, with the 95%% interval and p of paired bootstrap resampling of the rows "
        "(of a long-form run: its reference sentences after resegmentation); with --offline, RUN may be a sweep, and the difference of NoSE is given the same way",
    )
    sc.set_defaults(run=run_score)


def run_score(ns: argparse.Namespace) -> int:
    from simulst.eval.instances import read_log
    from simulst.eval.plot import run_dirs
    from simulst.eval.scores import format_scores, score, write_scores

    path = Path(ns.path)
    runs = [path] if not path.is_dir() or (path / "instances.log").exists() else run_dirs([path])
    for run in runs:
        log = run / "instances.log" if run.is_dir() else run
        if not log.exists():
            raise SimulstError(f"no instances log at {log}")
        scores = score(read_log(log))
        write_scores(log.parent, scores, ns.computation_aware)
        if len(runs) > 1:
            print(f"# {run.name}")
        print(format_scores(scores))
    if ns.offline:
        from simulst.eval.nose import nose, offline_quality, run_points

        value = nose(run_points([r if r.is_dir() else r.parent for r in runs]), offline_quality(ns.offline), ns.nose_max_ms)
        target = path if path.is_dir() else path.parent
        (target / "nose.json").write_text(json.dumps({"NoSE": value, "offline": str(ns.offline), "max_latency_ms": ns.nose_max_ms}) + "\n")
        print(f"NoSE\t{value:.4f}\t(LAAL 0-{ns.nose_max_ms:g} ms, BLEU relative to {ns.offline})")
    if ns.against:
        _print_against([r if r.is_dir() else r.parent for r in runs], Path(ns.against), ns.offline, ns.nose_max_ms)
    return 0


def _logs(runs: list[Path]) -> list[list[dict]]:
    from simulst.eval.instances import read_log

    return [read_log(run / "instances.log") for run in runs]


def _print_against(runs: list[Path], against: Path, offline: str | None, nose_max_ms: float) -> None:
    from simulst.eval.plot import run_dirs
    from simulst.eval.significance import SAMPLES, nose_bootstrap, paired_bootstrap

    base = [against.parent] if against.name == "instances.log" else [against] if (against / "instances.log").exists() else run_dirs([against])
    if len(base) > 1 and not offline:
        raise SimulstError(f"--against {against} is a sweep: give --offline to compare NoSE, or one run of it")
    try:
        rows = []
        if len(base) == 1:
            (base_log,) = _logs(base)
            rows = [(run.name, d) for run, log in zip(runs, _logs(runs)) for d in paired_bootstrap(base_log, log)]
        if offline:
            rows.append(("sweep", nose_bootstrap(_logs(base), _logs(runs), *_logs([Path(offline)]), nose_max_ms)))
    except ValueError as error:
        raise SimulstError(f"--against {against}: {error}") from None
    print(f"# against {against} (paired bootstrap, {SAMPLES} resamples of the rows; delta = run - against)")
    print("run\tmetric\tagainst\trun\tdelta\t95% interval\tp")
    for name, d in rows:
        n = 4 if d.metric == "NoSE" else 2
        print(f"{name}\t{d.metric}\t{d.base:.{n}f}\t{d.other:.{n}f}\t{d.delta:+.{n}f}\t[{d.low:+.{n}f}, {d.high:+.{n}f}]\t{d.p:.3f}")


def _add_plot(sub) -> None:
    pl = sub.add_parser(
        "plot",
        help="draw the latency-quality curve of runs and per-instance read/write timelines (PNG and SVG)",
        description="DIR is an eval output directory, or a sweep directory holding several runs. With several DIRs "
        "each is one curve (one policy), labelled with its NoSE when --offline names the offline run.",
    )
    pl.add_argument("dirs", nargs="+", metavar="DIR", help="eval output or sweep directories")
    pl.add_argument("--output", default="plots", help="where the PNG and SVG files go (default: plots)")
    pl.add_argument("--timelines", type=int, default=4, help="instances per run to draw a timeline for (default: 4)")
    pl.add_argument("--offline", help="the offline run of the same rows: draw its quality and give each DIR's NoSE in the legend")
    pl.add_argument("--nose-max-ms", type=float, default=4000.0, help="NoSE averages over LAAL from 0 to this (default: 4000)")
    pl.set_defaults(run=run_plot)


def run_plot(ns: argparse.Namespace) -> int:
    from simulst.eval.plot import plot

    for path in plot(ns.dirs, ns.output, ns.timelines, ns.offline, ns.nose_max_ms):
        print(path)
    return 0


def _add_join(sub) -> None:
    jc = sub.add_parser(
        "join-clips",
        help="join the clips of each direction into long utterances without pauses (45-60 s), a test of long speech",
        description="Cuts the silence at the edges of every clip (Silero VAD, 0.1 s kept) and joins the clips of each "
        "direction, in order, into utterances of --min-s to --max-s seconds; writes OUTPUT/joined.tsv (the data TSV "
        "format, sources and references joined) and OUTPUT/audio/*.flac, for 'simulst eval --data'; beside each flac, "
        "ID.segments.tsv: the utterance as a long-form stream whose sentences are its clips ('simulst eval --data "
        "OUTPUT/audio/*.segments.tsv' scores the output after resegmentation, latency per sentence: StreamLAAL).",
    )
    jc.add_argument("--data", nargs="+", required=True, help="data TSV file(s)")
    jc.add_argument("--output", required=True, help="output directory")
    jc.add_argument("--directions", help="only these directions, comma-separated (e.g. de-en,fr-en)")
    jc.add_argument("--min-s", type=float, default=45.0, help="shortest utterance in seconds (default: 45)")
    jc.add_argument("--max-s", type=float, default=60.0, help="longest utterance in seconds (default: 60)")
    jc.set_defaults(run=run_join)


def run_join(ns: argparse.Namespace) -> int:
    from simulst import registry
    from simulst.eval.data import read_tsv
    from simulst.eval.join import join_clips, write_joined
    from simulst.streaming.audio import load_audio

    rows = [r for tsv in ns.data for r in read_tsv(tsv)]
    if ns.directions:
        rows = [r for r in rows if r.direction in set(ns.directions.split(","))]
    rate = registry.backends.get("whisper").sample_rate
    joined = join_clips(rows, lambda path: load_audio(path, rate), rate, ns.min_s, ns.max_s)
    if not joined:
        raise SimulstError(f"no direction has {ns.min_s:g} s of speech to join")
    tsv = write_joined(joined, ns.output, rate)
    for item in joined:
        print(f"{item.id}\t{len(item.audio) / rate:.1f} s\t{len(item.rows)} clips", file=sys.stderr)
    print(tsv)
    return 0
