"""The ``simulst`` command line; flags are generated from the options dataclasses."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from simulst import registry
from simulst.errors import SimulstError
from simulst.events import event_to_dict
from simulst.options import SessionOptions, add_options, from_namespace

SAMPLE = "sample"


def _policy_options(parser: argparse.ArgumentParser) -> None:
    for name in registry.policies.names():
        add_options(parser, registry.policies.get(name).Options, prefix=name)


def _model_options(parser: argparse.ArgumentParser) -> None:
    from simulst.models.whisper import WhisperOptions

    parser.add_argument("--policy", default="alignatt", choices=registry.policies.names(), help="read/write policy (default: alignatt)")
    add_options(parser, WhisperOptions)
    add_options(parser, SessionOptions)
    _policy_options(parser)


def _build(ns: argparse.Namespace):
    from simulst import build
    from simulst.models.whisper import WhisperOptions

    backend = build.backend("whisper", from_namespace(WhisperOptions, ns))
    policy_cls = registry.policies.get(ns.policy)
    policy = build.policy(ns.policy, from_namespace(policy_cls.Options, ns, prefix=ns.policy))
    return backend, policy, from_namespace(SessionOptions, ns)


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
    from simulst import build
    from simulst.streaming.audio import load_audio

    if ns.audio == SAMPLE:
        from simulst.demos import SAMPLE_CLIP, SAMPLE_LANG

        ns.audio = str(SAMPLE_CLIP)
        ns.src_lang = ns.src_lang or SAMPLE_LANG
    audio = load_audio(ns.audio, registry.backends.get("whisper").sample_rate)
    backend, policy, options = _build(ns)
    session = build.session(backend, policy, options)
    step = max(1, round(options.chunk_ms * backend.sample_rate / 1000))
    started = time.perf_counter()
    for start in range(0, len(audio), step):
        if ns.realtime:
            time.sleep(max(0.0, start / backend.sample_rate - (time.perf_counter() - started)))
        session.feed_audio(audio[start : start + step])
        for event in session.events():
            _print_event(event, ns.format)
    session.feed_eof()
    for event in session.events():
        _print_event(event, ns.format)
    return 0


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
    tr.add_argument("--format", choices=["text", "jsonl"], default="text", help="text lines, or one JSON event per line (default: text)")
    tr.add_argument("--realtime", action="store_true", help="feed the audio at real-time speed, as a live source would")
    _model_options(tr)
    tr.set_defaults(run=cmd_translate)
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
