"""``simulst serve``, ``mic`` and the benchmarks of live use: ``bench-server``, ``bench-round``, ``bench-soak``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulst import build, flags
from simulst.cli.common import add_model_flags, sample_audio, specs
from simulst.options import add_options, from_namespace
from simulst.streaming.protocol import ServerOptions


def add_commands(sub) -> None:
    _add_serve(sub)
    _add_mic(sub)
    _add_bench_server(sub)
    _add_bench_round(sub)
    _add_bench_soak(sub)


def _add_serve(sub) -> None:
    sv = sub.add_parser(
        "serve",
        help="serve live translation over WebSocket (protocol: docs/protocol.md)",
        description="Each connection sends a JSON start message, binary audio frames and {\"type\": \"end\"}; "
        "the server answers with JSON events (ready, commit, partial, final, error). Options given here are the "
        "model's; each client chooses its languages, task, policy and policy options in its start message.",
    )
    add_options(sv, ServerOptions)
    flags.add_model(sv)
    sv.set_defaults(run=run_serve)


def run_serve(ns: argparse.Namespace) -> int:
    import asyncio

    from simulst.streaming.server import model_server

    options = from_namespace(ServerOptions, ns)
    server = model_server(flags.model_spec(ns), options)
    ready = lambda port: print(f"simulst: serving ws://{options.host}:{port}/ (health: http://{options.host}:{port}/health)", file=sys.stderr, flush=True)  # noqa: E731
    asyncio.run(server.run(ready=ready))
    return 0


def _add_mic(sub) -> None:
    mc = sub.add_parser(
        "mic",
        help="translate the microphone live in the terminal (locally, or through a simulst server)",
        description="Capture the default input device (PortAudio), show committed text (bold), the provisional "
        "tail (dim) and the lag; Ctrl-C ends the input and prints the final translation.",
    )
    mc.add_argument("--server", help="ws:// URL of a simulst server (default: run the model here)")
    mc.add_argument("--token", help="bearer token for the server")
    mc.add_argument("--input-device", help="the audio input: a device name or index (default: the system default)")
    mc.add_argument("--seconds", type=float, help="stop after this much audio (default: until Ctrl-C)")
    add_model_flags(mc)
    mc.set_defaults(run=run_mic, partials=True)


def run_mic(ns: argparse.Namespace) -> int:
    import threading

    from rich.console import Console
    from rich.live import Live

    from simulst.demos.mic import Transcript, microphone, run_local, run_remote
    from simulst.streaming.protocol import start_message

    stop = threading.Event()
    blocks = microphone(ns.input_device, ns.seconds, stop)
    transcript = Transcript()
    console = Console(stderr=True)
    model, spec = specs(ns)
    with Live(transcript.render(), console=console, refresh_per_second=8, transient=True) as live:

        def show(event: dict, audio_s: float) -> None:
            if event["type"] == "error":
                console.print(f"[red]server: {event['message']}[/red]")
            transcript.apply(event, audio_s)
            live.update(transcript.render())

        try:
            if ns.server:
                run_remote(blocks, ns.server, start_message(spec), show, ns.token)
            else:
                run_local(blocks, build.make(build.model(model), spec), show)
        except KeyboardInterrupt:
            stop.set()
    print(transcript.committed.strip())
    return 0


def _add_bench_server(sub) -> None:
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
    add_model_flags(bs)
    bs.set_defaults(run=run_bench_server)


def run_bench_server(ns: argparse.Namespace) -> int:
    from simulst.streaming.audio import load_audio
    from simulst.streaming.bench import HEADER, bench_servers, repeat_to

    clips = [repeat_to(load_audio(path, 16000), ns.minutes, 16000) for path in ns.audio]
    model, spec = specs(ns)
    modes = [None] if ns.url else {"on": [True], "off": [False], "both": [False, True]}[ns.batching]
    options = [ServerOptions(port=0, max_sessions=max(ns.clients), batching=b, model_threads=ns.model_threads, catch_up_s=ns.catch_up_s)
               for b in modes if b is not None]
    print(HEADER, flush=True)
    reports = bench_servers(model, spec, clips, ns.clients, options, ns.url, lambda line: print(line, flush=True))
    if ns.json:
        Path(ns.json).write_text(json.dumps(reports, indent=1) + "\n")
    return 0


def _add_bench_round(sub) -> None:
    br = sub.add_parser(
        "bench-round",
        help="profile decision rounds: time in mel, encoder, prompt and prefix feed, token steps, policy, guards, the rest",
        description="Streams the clips through fresh sessions (computation-unaware, as fast as they go) with the "
        "model's and the session's methods timed, and prints the mean time per round of each part.",
    )
    br.add_argument("audio", nargs="+", help="audio files")
    br.add_argument("--json", help="also write the report to this JSON file")
    add_model_flags(br)
    br.set_defaults(run=run_bench_round)


def run_bench_round(ns: argparse.Namespace) -> int:
    from simulst.streaming.audio import load_audio
    from simulst.streaming.profile import format_profile, profile_rounds

    model, spec = specs(ns)
    backend = build.model(model)
    clips = [load_audio(path, backend.sample_rate) for path in ns.audio]
    report = profile_rounds(backend, lambda: build.make(backend, spec), clips, round(spec.options.chunk_ms * backend.sample_rate / 1000))
    print(format_profile(report, sum(map(len, clips)) / backend.sample_rate))
    if ns.json:
        Path(ns.json).write_text(json.dumps(report), encoding="utf-8")
    return 0


def _add_bench_soak(sub) -> None:
    sk = sub.add_parser(
        "bench-soak",
        help="stream an hour (or --minutes) of audio through one session and report whether cost and memory stay flat",
        description="Repeats AUDIO (the files joined into one cycle; default the bundled clip) for at least --minutes "
        "and feeds it chunk by chunk to one session, as a live stream that never ends would. The stream is a whole "
        "number of cycles plus one window, so its first and last windows hold the same audio: it reports the mean "
        "compute per chunk in each (compute_ratio = last / first), the session's work per chunk (decoder steps, "
        "buffered audio, prefix tokens) in each, resident memory, peak memory after the first window and at the end, "
        "and guard interventions. A progress line is printed every window.",
    )
    sk.add_argument("audio", nargs="*", help="audio files forming the repeated cycle (default: the bundled German clip)")
    sk.add_argument("--minutes", type=float, default=60.0, help="least stream length in minutes (default: 60)")
    sk.add_argument("--window-s", type=float, default=300.0, help="length of the compared first and last windows (default: 300)")
    sk.add_argument("--json", help="also write the report with per-chunk compute and memory to this JSON file")
    add_model_flags(sk)
    sk.set_defaults(run=run_bench_soak)


def run_bench_soak(ns: argparse.Namespace) -> int:
    from simulst.streaming.audio import load_audio
    from simulst.streaming.soak import cycle_of, soak

    paths = [sample_audio(ns, path) for path in ns.audio or ["sample"]]
    model, spec = specs(ns)
    backend = build.model(model)
    cycle = cycle_of([load_audio(path, backend.sample_rate) for path in paths], ns.window_s, backend.sample_rate)
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    report = soak(build.make(backend, spec), cycle, backend.sample_rate, ns.minutes, ns.window_s, spec.options.chunk_ms, progress)
    for key, value in report.summary().items():
        print(f"{key}\t{value:.3f}" if isinstance(value, float) else f"{key}\t{value}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(report.to_json()), encoding="utf-8")
    return 0
