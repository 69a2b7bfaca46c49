"""``simulst translate``: one audio file streamed through a session, each emission printed as it comes."""

from __future__ import annotations

import argparse
import json
import sys
import time

from simulst import build
from simulst.cli.common import SAMPLE, add_model_flags, sample_audio, specs
from simulst.events import event_to_dict
from simulst.options import add_options, from_namespace


def add_commands(sub) -> None:
    from simulst.streaming.subtitles import SubtitleOptions

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
    add_options(tr, SubtitleOptions)
    add_model_flags(tr, speech=True)
    tr.set_defaults(run=run)


def run(ns: argparse.Namespace) -> int:
    from simulst.streaming.audio import load_audio

    path = sample_audio(ns, ns.audio)
    model, spec = specs(ns, speak=bool(ns.speech_out))
    backend = build.model(model)
    audio = load_audio(path, backend.sample_rate)
    session = build.make(backend, spec)
    step = max(1, round(spec.options.chunk_ms * backend.sample_rate / 1000))
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
        _write_speech(ns.speech_out, [e for e in kept if e.type == "speech"], len(audio) * 1000 / backend.sample_rate)
    if ns.format in ("srt", "vtt"):
        from simulst.streaming.subtitles import SubtitleOptions, cues, to_srt, to_vtt

        layout = cues(kept, from_namespace(SubtitleOptions, ns))
        print((to_srt if ns.format == "srt" else to_vtt)(layout), end="")
    return 0


def _show(events, fmt: str) -> list:
    """Print events as they come (text, jsonl); keep them for subtitles, which are timed once all is known."""
    events = list(events)
    for event in events if fmt in ("text", "jsonl") else ():
        if fmt == "jsonl":
            print(json.dumps(event_to_dict(event), ensure_ascii=False), flush=True)
        elif event.type in ("commit", "partial"):
            print(f"[{event.source_ms / 1000:7.2f} s] {'... ' if event.type == 'partial' else ''}{event.text.strip()}", flush=True)
        elif event.type == "final":
            print(f"\n{event.text}", flush=True)
    return events


def _write_speech(path: str, speech: list, length_ms: float) -> None:
    import soundfile

    from simulst.streaming.speech import render

    track, rate = render(speech, length_ms)
    soundfile.write(path, track, rate)
    print(f"wrote {path}: {len(track) / rate:.1f} s of speech aligned to the source", file=sys.stderr)
