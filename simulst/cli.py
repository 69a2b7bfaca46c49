"""The ``simulst`` command line; flags are generated from the options dataclasses."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from simulst import registry
from simulst.cascade import CascadeOptions
from simulst.errors import SimulstError
from simulst.events import event_to_dict
from simulst.options import SERVED_ENCODER_WORKERS, SessionOptions, add_options, core_share, from_namespace, share_cores

SAMPLE = "sample"


def _policy_options(parser: argparse.ArgumentParser) -> None:
    for name in registry.policies.names():
        add_options(parser, registry.policies.get(name).Options, prefix=name)


def _backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and every backend's options (Whisper's unprefixed, the others' as ``--NAME-*``)."""
    parser.add_argument(
        "--backend",
        default="whisper",
        choices=registry.backends.names(),
        help="model backend: whisper (autoregressive, cross-attention for the policies) or nar (a CTC head over "
        "Whisper's encoder: one parallel pass per update, English transcription; use it with --policy retranslate) "
        "(default: whisper)",
    )
    for name in registry.backends.names():
        cls = registry.backends.get(name)
        add_options(parser, cls.Options, prefix=getattr(cls, "prefix", ""))


def _backend(ns: argparse.Namespace):
    from simulst import build

    cls = registry.backends.get(ns.backend)
    return build.backend(ns.backend, from_namespace(cls.Options, ns, prefix=getattr(cls, "prefix", "")))


def _served_backend(ns: argparse.Namespace, model_threads: int):
    """The backend of a server with ``model_threads`` model threads: more than one share the cores (each backend's
    unset --threads becomes cores / N); CTranslate2's encoder gets two workers, or one per model thread."""
    threads = core_share(model_threads) if model_threads > 1 else 0
    return _backend(share_cores(portable(ns), threads, max(model_threads, SERVED_ENCODER_WORKERS)))


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default="alignatt", choices=registry.policies.names(), help="read/write policy (default: alignatt)")
    _backend_options(parser)
    add_options(parser, SessionOptions)
    add_options(parser, CascadeOptions)
    _policy_options(parser)


def _build(ns: argparse.Namespace):
    from simulst import build

    backend = _backend(ns)
    policy_options = from_namespace(registry.policies.get(ns.policy).Options, ns, prefix=ns.policy)
    cascade = from_namespace(CascadeOptions, ns)

    def make_session(options: SessionOptions):
        return build.session(backend, build.policy(ns.policy, policy_options), options, cascade=cascade)

    return backend, make_session, from_namespace(SessionOptions, ns)


def portable(ns: argparse.Namespace) -> dict:
    """A command line's options as a picklable dict (for Ray actors), without the parser and the command."""
    return {k: v for k, v in vars(ns).items() if k not in ("parser", "run")}


def _print_event(event, fmt: str) -> None:
    if fmt == "jsonl":
        print(json.dumps(event_to_dict(event), ensure_ascii=False), flush=True)
    elif event.type == "commit":
        print(f"[{event.source_ms / 1000:7.2f} s] {event.text.strip()}", flush=True)
    elif event.type == "partial":
        print(f"[{event.source_ms / 1000:7.2f} s] ... {event.text.strip()}", flush=True)
    elif event.type == "final":
        print(f"\n{event.text}", flush=True)


def cmd_translate(ns: argparse.Namespace) -> int:
    from simulst.streaming.audio import load_audio

    if ns.audio == SAMPLE:
        from simulst.demos import SAMPLE_CLIP, SAMPLE_LANG

        ns.audio = str(SAMPLE_CLIP)
        ns.src_lang = ns.src_lang or SAMPLE_LANG
    audio = load_audio(ns.audio, registry.backends.get("whisper").sample_rate)
    backend, make_session, options = _build(ns)
    session = make_session(options)
    if ns.speech_out:
        from simulst.streaming.speech import SpeakingSession, SpeechOptions, speaker_for

        speech_options = from_namespace(SpeechOptions, ns)
        target = options.tgt_lang if options.task == "translate" else (options.src_lang or "en")
        session = SpeakingSession(session, speaker_for(target, speech_options), speech_options)
    step = max(1, round(options.chunk_ms * backend.sample_rate / 1000))
    started = time.perf_counter()
    kept = []
    for start in range(0, len(audio), step):
        if ns.realtime:
            time.sleep(max(0.0, start / backend.sample_rate - (time.perf_counter() - started)))
        session.feed_audio(audio[start : start + step])
        kept += _show(session.events(), ns.format)
    session.feed_eof()
    kept += _show(session.events(), ns.format)
    if ns.speech_out:
        import soundfile

        from simulst.streaming.speech import render

        track, rate = render([e for e in kept if e.type == "speech"], len(audio) * 1000 / backend.sample_rate)
        soundfile.write(ns.speech_out, track, rate)
        print(f"wrote {ns.speech_out}: {len(track) / rate:.1f} s of speech aligned to the source", file=sys.stderr)
    if ns.format in ("srt", "vtt"):
        from simulst.streaming.subtitles import SubtitleOptions, cues, to_srt, to_vtt

        layout = cues(kept, from_namespace(SubtitleOptions, ns))
        print((to_srt if ns.format == "srt" else to_vtt)(layout), end="")
    return 0


def _show(events, fmt: str) -> list:
    """Print events as they come (text, jsonl); keep them for subtitles, which are timed once all is known."""
    events = list(events)
    if fmt in ("text", "jsonl"):
        for event in events:
            _print_event(event, fmt)
    return events


def cmd_eval(ns: argparse.Namespace) -> int:
    from simulst.eval.data import read_lists, read_tsv
    from simulst.eval.run import evaluate
    from simulst.eval.scores import format_scores

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
    points = _sweep_points(ns) if ns.sweep else _compare_points(ns) if ns.compare else [(ns, ns.output)]
    metrics = SUMMARY + (COMPARED if ns.compare else [])
    summary = ["\t".join(["point", *metrics])]

    def scored(scores: dict, output: str) -> None:
        print(format_scores(scores))
        print(f"wrote {output}/instances.log, scores.tsv, scores.json", file=sys.stderr)
        o = scores["overall"]
        summary.append("\t".join([Path(output).name] + [f"{o.get(m, float('nan')):.3f}" for m in metrics]))

    if ns.executor == "ray":
        from simulst.eval.distributed import evaluate_on_ray

        for scores, (_, output) in zip(evaluate_on_ray(points, rows, ns.workers, ns.address, ns.computation_aware, sys.stderr), points):
            scored(scores, output)
    else:
        for point_ns, output in points:
            backend, make_session, options = _build(point_ns)
            scored(evaluate(rows, backend, _speaking(point_ns, make_session), options, output, ns.computation_aware), output)
    if ns.sweep or ns.compare:
        (Path(ns.output) / ("sweep.tsv" if ns.sweep else "compare.tsv")).write_text("\n".join(summary) + "\n")
        print("\n".join(summary))
    return 0


def _speaking(ns: argparse.Namespace, make):
    """``make`` (options -> session), its sessions speaking their output when ``--speech`` is given."""
    if not ns.speech:
        return make
    from simulst.streaming.speech import SpeakingSession, SpeechOptions, speaker_for

    speech_options = from_namespace(SpeechOptions, ns)

    def make_speaking(options: SessionOptions):
        target = options.tgt_lang if options.task == "translate" else options.src_lang
        return SpeakingSession(make(options), speaker_for(target, speech_options), speech_options)

    return make_speaking


SUMMARY = ["BLEU", "LAAL", "LAAL_CA", "AL", "RTF"]
COMPARED = ["WER", "DisplayLAAL", "NE", "Revisions", "UpdateMs", "UpdateMs_p95", "EncodeMs", "DecoderSteps"]


def _compare_points(ns: argparse.Namespace) -> list[tuple[argparse.Namespace, str]]:
    """One namespace per ``--compare NAME=FLAGS``: the command line with FLAGS parsed on top of it."""
    import shlex

    points = []
    for spec in ns.compare:
        name, sep, flags = spec.partition("=")
        if not sep or not name or "/" in name:
            raise SimulstError(f"--compare takes NAME=FLAGS (e.g. aa='--policy alignatt'), not {spec!r}")
        point = argparse.Namespace(**vars(ns))
        try:
            ns.parser.parse_args(["--output", ns.output, *shlex.split(flags)], namespace=point)
        except SystemExit:
            raise SimulstError(f"--compare {name}: cannot parse {flags!r}") from None
        points.append((point, str(Path(ns.output) / name)))
    return points


def _sweep_points(ns: argparse.Namespace) -> list[tuple[argparse.Namespace, str]]:
    """One namespace per value of ``--sweep KEY=V1,V2,...`` (KEY: a flag's dest, e.g. alignatt.threshold_ms)."""
    key, _, values = ns.sweep.partition("=")
    actions = {a.dest: a for a in ns.parser._actions}
    if key not in actions or not values:
        known = ", ".join(sorted(d for d in actions if d not in ("help", "sweep", "output", "data")))
        raise SimulstError(f"--sweep takes KEY=V1,V2,... with KEY one of: {known}")
    points = []
    for value in values.split(","):
        point = argparse.Namespace(**vars(ns))
        convert = actions[key].type or str
        try:
            setattr(point, key, convert(value))
        except (TypeError, ValueError):
            raise SimulstError(f"--sweep: {value!r} is not a valid value for {key}") from None
        points.append((point, str(Path(ns.output) / f"{key}={value}")))
    return points


def cmd_plot(ns: argparse.Namespace) -> int:
    from simulst.eval.plot import plot

    for path in plot(ns.dirs, ns.output, ns.timelines, ns.offline, ns.nose_max_ms):
        print(path)
    return 0


def cmd_score(ns: argparse.Namespace) -> int:
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
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    import asyncio

    from simulst.streaming.server import Server, ServerOptions, session_factory

    options = from_namespace(ServerOptions, ns)
    if options.ray:
        from simulst.streaming.replicas import ReplicaPool

        pool = ReplicaPool(portable(ns), options.replicas, options.max_sessions, options.batching, options.address)
        server = Server(pool, pool.make_session, options)
    else:
        backend = _served_backend(ns, options.model_threads)
        server = Server(backend, session_factory(backend), options)
    try:
        asyncio.run(server.run(ready=lambda port: print(f"simulst: serving ws://{options.host}:{port}/ (health: http://{options.host}:{port}/health)", file=sys.stderr, flush=True)))
    finally:
        if options.ray:
            pool.close()
    return 0


def cmd_mic(ns: argparse.Namespace) -> int:
    import threading

    from rich.console import Console
    from rich.live import Live

    from simulst.demos.mic import Transcript, microphone, run_local, run_remote

    stop = threading.Event()
    blocks = microphone(ns.device, ns.seconds, stop)
    transcript = Transcript()
    console = Console(stderr=True)
    with Live(transcript.render(), console=console, refresh_per_second=8, transient=True) as live:

        def show(event: dict, audio_s: float) -> None:
            if event["type"] == "error":
                console.print(f"[red]server: {event['message']}[/red]")
            transcript.apply(event, audio_s)
            live.update(transcript.render())

        try:
            if ns.server:
                run_remote(blocks, ns.server, _start_fields(ns), show, ns.token)
            else:
                _, make_session, options = _build(ns)
                run_local(blocks, make_session, options, show)
        except KeyboardInterrupt:
            stop.set()
    print(transcript.committed.strip())
    return 0


def cmd_bench_server(ns: argparse.Namespace) -> int:
    import numpy as np

    from simulst.streaming.audio import load_audio
    from simulst.streaming.bench import HEADER, bench, row

    clips = [load_audio(path, 16000) for path in ns.audio]
    if ns.minutes:  # each clip repeated to the length asked for
        clips = [np.tile(c, int(np.ceil(ns.minutes * 60 * 16000 / len(c))))[: int(ns.minutes * 60 * 16000)] for c in clips]
    start = _start_fields(ns)
    modes = [None] if ns.url else {"on": [True], "off": [False], "both": [False, True]}[ns.batching]
    reports = []
    print(HEADER, flush=True)
    for batching in modes:
        url, running, solo, memory = ns.url, None, None, None
        if not url:
            running, solo, memory = _bench_server(ns, clips, start, batching)
            url = running.url
        for n in ns.clients:
            report = bench(url, clips, n, start, solo, memory)
            reports.append({"batching": batching, **report})
            print(row(report, "-" if batching is None else "on" if batching else "off"), flush=True)
        if running is not None:
            running.stop()
    if ns.json:
        Path(ns.json).write_text(json.dumps(reports, indent=1) + "\n")
    return 0


def _bench_server(ns: argparse.Namespace, clips: list, start: dict, batching: bool) -> tuple:
    """A server in this process for bench-server, each clip's output alone (the reference every client's output
    must equal), and the process's memory."""
    from simulst.streaming.bench import alone
    from simulst.streaming.server import Background, Server, ServerOptions, session_factory
    from simulst.streaming.soak import rss_mb

    backend = _served_backend(ns, ns.model_threads)
    options = ServerOptions(port=0, max_sessions=max(ns.clients), batching=batching, model_threads=ns.model_threads, catch_up_s=ns.catch_up_s)
    server = Server(backend, session_factory(backend), options)
    return Background(server), [alone(server, clip, start) for clip in clips], rss_mb


def cmd_bench_soak(ns: argparse.Namespace) -> int:
    import numpy as np

    from simulst.streaming.audio import load_audio
    from simulst.streaming.soak import soak

    if not ns.audio:
        from simulst.demos import SAMPLE_CLIP, SAMPLE_LANG

        ns.audio, ns.src_lang = [str(SAMPLE_CLIP)], ns.src_lang or SAMPLE_LANG
    rate = registry.backends.get("whisper").sample_rate
    cycle = np.concatenate([load_audio(path, rate) for path in ns.audio])
    if len(cycle) < ns.window_s * rate:  # a short clip is repeated into one window's worth
        cycle = np.tile(cycle, int(np.ceil(ns.window_s * rate / len(cycle))))
    _, make_session, options = _build(ns)
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    report = soak(make_session(options), cycle, rate, ns.minutes, ns.window_s, options.chunk_ms, progress)
    summary = report.summary()
    for key, value in summary.items():
        print(f"{key}\t{value:.3f}" if isinstance(value, float) else f"{key}\t{value}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(report.to_json()), encoding="utf-8")
    return 0


def cmd_join_clips(ns: argparse.Namespace) -> int:
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


def cmd_bench_round(ns: argparse.Namespace) -> int:
    from simulst.streaming.audio import load_audio
    from simulst.streaming.profile import format_profile, profile_rounds

    backend, make_session, options = _build(ns)
    clips = [load_audio(path, backend.sample_rate) for path in ns.audio]
    report = profile_rounds(backend, lambda: make_session(options), clips, round(options.chunk_ms * backend.sample_rate / 1000))
    print(format_profile(report, sum(map(len, clips)) / backend.sample_rate))
    if ns.json:
        Path(ns.json).write_text(json.dumps(report), encoding="utf-8")
    return 0


def cmd_train_policy(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from simulst import build
    from simulst.models.whisper import WhisperOptions
    from simulst.policies.train import TrainOptions, train_policy

    backend = build.backend("whisper", from_namespace(WhisperOptions, ns))
    card = train_policy(ns.kind, ns.data, ns.output, from_namespace(TrainOptions, ns), backend, Console(stderr=True))
    print(card)
    return 0


def cmd_train_nar(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from simulst import build
    from simulst.models.nar_train import NarTrainOptions, train_nar
    from simulst.models.whisper import WhisperOptions

    backend = build.backend("whisper", from_namespace(WhisperOptions, ns))
    card = train_nar(ns.data, ns.output, from_namespace(NarTrainOptions, ns), backend, Console(stderr=True))
    print(card)
    return 0


def _start_fields(ns: argparse.Namespace) -> dict:
    """A server start message's options from the session and policy flags."""
    return {**{k: v for k, v in vars(from_namespace(SessionOptions, ns)).items() if v is not None}, "policy": ns.policy}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="simulst",
        description="Simultaneous speech translation: offline models made simultaneous by read/write policies.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    tr = sub.add_parser(
        "translate",
        help="translate (or transcribe) an audio file as if it were streamed, printing each emission with its source time",
        description="Stream an audio file through a model and a policy chunk by chunk. Each line shows the source time "
        "(audio consumed) at which the text was committed; the last line is the whole translation.",
    )
    tr.add_argument("audio", help=f"audio file (wav, flac, ogg; any rate or channels), or '{SAMPLE}' for the bundled German clip")
    tr.add_argument(
        "--format", choices=["text", "jsonl", "srt", "vtt"], default="text",
        help="text lines, one JSON event per line, or SRT/WebVTT subtitles timed by emission (default: text)",
    )
    tr.add_argument("--realtime", action="store_true", help="feed the audio at real-time speed, as a live source would")
    tr.add_argument("--speech-out", metavar="WAV", help="also speak the translation as it is committed and write it, aligned to source time, to WAV")
    from simulst.streaming.speech import SpeechOptions
    from simulst.streaming.subtitles import SubtitleOptions

    add_options(tr, SubtitleOptions)
    add_options(tr, SpeechOptions)
    _model_options(tr)
    tr.set_defaults(run=cmd_translate)

    ev = sub.add_parser(
        "eval",
        help="run a data set through a model and policy; write instances.log, scores.tsv, scores.json",
        description="Stream every row of a data TSV (id audio duration src_lang tgt_lang source reference) or of "
        "SimulEval --source/--target lists through the same Session as 'translate', and score quality (BLEU, chrF, "
        "WER for transcription) and latency (AL, LAAL, AP, DAL, ATD, StartOffset, EndOffset from source times; "
        "the _CA variants from source time plus compute time). Rows in directions the model cannot do are skipped "
        "with a message.",
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
        "--compare",
        nargs="+",
        metavar="NAME=FLAGS",
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
    _model_options(ev)
    from simulst.streaming.speech import SpeechOptions

    add_options(ev, SpeechOptions)
    ev.set_defaults(run=cmd_eval, parser=ev)

    sv = sub.add_parser(
        "serve",
        help="serve live translation over WebSocket (protocol: docs/protocol.md)",
        description="Each connection sends a JSON start message, binary audio frames and {\"type\": \"end\"}; "
        "the server answers with JSON events (ready, commit, partial, final, error). Options given here are the "
        "model's; each client chooses its languages, task, policy and policy options in its start message.",
    )
    from simulst.streaming.server import ServerOptions

    add_options(sv, ServerOptions)
    _backend_options(sv)
    sv.set_defaults(run=cmd_serve)

    mc = sub.add_parser(
        "mic",
        help="translate the microphone live in the terminal (locally, or through a simulst server)",
        description="Capture the default input device (PortAudio), show committed text (bold), the provisional "
        "tail (dim) and the lag; Ctrl-C ends the input and prints the final translation.",
    )
    mc.add_argument("--server", help="ws:// URL of a simulst server (default: run the model here)")
    mc.add_argument("--token", help="bearer token for the server")
    mc.add_argument("--device", help="input device name or index (default: the system default)")
    mc.add_argument("--seconds", type=float, help="stop after this much audio (default: until Ctrl-C)")
    _model_options(mc)
    mc.set_defaults(run=cmd_mic, partials=True)

    bs = sub.add_parser(
        "bench-server",
        help="replay audio in real time from N concurrent clients: lag, end delay, lost commits, memory",
        description="Starts a server on loopback with the model options (or uses --url), replays the audio in real "
        "time from N clients at once (client i plays the i-th file, cycling, and starts 0.3 s after the one before), "
        "and prints per client count: the lag of committed text (wall time since the client started minus the "
        "source time it covers: p50 and p95 over all commits, and the worst client's p95), the delay from the end "
        "of the audio to the final event, commits lost (commits that do not add up to the final) or out of order, "
        "clients whose final differs from the clip's output alone, and the server's resident memory (MB at the "
        "start, peak, end). A count is real time when every final comes within 1.5 s of the end of the audio, the "
        "lag p95 is at most 2.5 s and nothing is lost or out of order.",
    )
    bs.add_argument("--audio", nargs="+", required=True, help="audio files to replay")
    bs.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1], help="client counts, e.g. 1,2,4,8")
    bs.add_argument("--batching", choices=["on", "off", "both"], default="on",
                    help="the started server's cross-session batching; both: one server without, then one with (default: on)")
    bs.add_argument("--model-threads", type=int, default=1, help="the started server's model threads (serve --model-threads) (default: 1)")
    bs.add_argument("--catch-up-s", type=float, default=ServerOptions.catch_up_s,
                    help=f"the started server's --catch-up-s (serve --catch-up-s) (default: {ServerOptions.catch_up_s:g})")
    bs.add_argument("--minutes", type=float, default=0.0, help="repeat each file to this many minutes of audio (a soak under load)")
    bs.add_argument("--json", help="also write every report (with the memory samples, one a second) to this JSON file")
    bs.add_argument("--url", help="ws:// URL of a running server (default: start one here)")
    _model_options(bs)
    bs.set_defaults(run=cmd_bench_server)

    br = sub.add_parser(
        "bench-round",
        help="profile decision rounds: time in mel, encoder, prompt and prefix feed, token steps, policy, guards, the rest",
        description="Streams the clips through fresh sessions (computation-unaware, as fast as they go) with the "
        "model's and the session's methods timed, and prints the mean time per round of each part.",
    )
    br.add_argument("audio", nargs="+", help="audio files")
    br.add_argument("--json", help="also write the report to this JSON file")
    _model_options(br)
    br.set_defaults(run=cmd_bench_round)

    sk = sub.add_parser(
        "bench-soak",
        help="stream an hour (or --minutes) of audio through one session and report whether cost and memory stay flat",
        description="Repeats AUDIO (the files joined into one cycle; default the bundled clip) for at least --minutes "
        "and feeds it chunk by chunk to one session, as a live stream that never ends would. The stream is a whole "
        "number of cycles plus one window, so its first and last windows hold the same audio: it reports the mean "
        "compute per chunk in each (compute_ratio = last / first), resident memory, peak memory after the first "
        "window and at the end, and guard interventions. A progress line is printed every window.",
    )
    sk.add_argument("audio", nargs="*", help="audio files forming the repeated cycle (default: the bundled German clip)")
    sk.add_argument("--minutes", type=float, default=60.0, help="least stream length in minutes (default: 60)")
    sk.add_argument("--window-s", type=float, default=300.0, help="length of the compared first and last windows (default: 300)")
    sk.add_argument("--json", help="also write the report with per-chunk compute and memory to this JSON file")
    _model_options(sk)
    sk.set_defaults(run=cmd_bench_soak)

    tp = sub.add_parser(
        "train-policy",
        help="train a learned policy's head on the frozen model (REINA): synthetic speech, cached features, training",
        description="Decodes every training utterance with the frozen model (its own full-audio output is the target), "
        "caches teacher-forced features at truncation points every --step-ms (OUTPUT/features, reused by later runs), "
        "and trains a small head; writes OUTPUT/KIND-MODEL.pt with its card OUTPUT/KIND-MODEL.json. Keep the rows you "
        "evaluate on (the FLEURS dev rows) out of --data.",
    )
    tp.add_argument("kind", choices=["reina", "dar"], help="the learned policy")
    tp.add_argument("--data", nargs="+", required=True, help="training data TSV(s): X->en rows are translated, English rows transcribed")
    tp.add_argument("--output", required=True, help="output directory")
    from simulst.models.whisper import WhisperOptions
    from simulst.policies.train import TrainOptions

    add_options(tp, TrainOptions)
    add_options(tp, WhisperOptions)
    tp.set_defaults(run=cmd_train_policy)

    tn = sub.add_parser(
        "train-nar",
        help="train the non-autoregressive CTC head over the frozen Whisper encoder (English transcription)",
        description="Sequence-level distillation: the frozen Whisper transcribes every English training row and "
        "synthetic English speech (Piper, espeak-ng); its encoder states over each utterance and one truncation "
        "of it are cached once (OUTPUT/cache, reused), then a small CTC head trains on the cache. Every "
        "--holdout-every-th English row is left out and listed in OUTPUT/heldout.tsv for evaluation. Writes "
        "OUTPUT/ctc-MODEL-en.pt and its card OUTPUT/ctc-MODEL-en.json; use it with --backend nar --nar-head CARD.",
    )
    tn.add_argument("--data", nargs="+", required=True, help="training data TSV(s); their English rows are used")
    tn.add_argument("--output", required=True, help="output directory")
    from simulst.models.nar_train import NarTrainOptions

    add_options(tn, NarTrainOptions)
    add_options(tn, WhisperOptions)
    tn.set_defaults(run=cmd_train_nar)

    jc = sub.add_parser(
        "join-clips",
        help="join the clips of each direction into long utterances without pauses (45-60 s), a test of long speech",
        description="Cuts the silence at the edges of every clip (Silero VAD, 0.1 s kept) and joins the clips of each "
        "direction, in order, into utterances of --min-s to --max-s seconds; writes OUTPUT/joined.tsv (the data TSV "
        "format, sources and references joined) and OUTPUT/audio/*.flac, for 'simulst eval --data'.",
    )
    jc.add_argument("--data", nargs="+", required=True, help="data TSV file(s)")
    jc.add_argument("--output", required=True, help="output directory")
    jc.add_argument("--directions", help="only these directions, comma-separated (e.g. de-en,fr-en)")
    jc.add_argument("--min-s", type=float, default=45.0, help="shortest utterance in seconds (default: 45)")
    jc.add_argument("--max-s", type=float, default=60.0, help="longest utterance in seconds (default: 60)")
    jc.set_defaults(run=cmd_join_clips)

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
    pl.set_defaults(run=cmd_plot)

    sc = sub.add_parser(
        "score",
        help="recompute every metric of an output directory or a SimulEval instances.log",
        description="Read an instances log (ours or SimulEval's) and write scores.tsv and scores.json beside it.",
    )
    sc.add_argument("path", help="an output directory or an instances.log file")
    sc.add_argument("--computation-aware", action="store_true", help="also list the _CA metrics in scores.tsv")
    sc.add_argument("--offline", help="the offline run of the same rows: also report NoSE of the runs under PATH (a sweep)")
    sc.add_argument("--nose-max-ms", type=float, default=4000.0, help="NoSE averages over LAAL from 0 to this (default: 4000)")
    sc.set_defaults(run=cmd_score)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        return ns.run(ns)
    except SimulstError as exc:
        print(f"simulst: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
