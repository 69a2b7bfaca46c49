"""Where a decision round's time goes (``simulst bench-round``): mel, encoder, prompt and prefix feed, proposed
tokens, policy, guards, and the rest (session bookkeeping, Python). The parts are timed by wrapping the methods
that do them for the duration of the run, so nothing in the hot path pays for it otherwise."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

PARTS = ["mel", "encoder", "prefix feed", "token steps", "policy", "guards", "rest"]


@contextmanager
def timed(owner, name: str, totals: dict, part: str | None = None, pick=None) -> Iterator[None]:
    """Time every call of ``owner.name`` into ``totals[part]`` (``pick(self, *args)`` may choose the part)."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        key = pick(*args) if pick else part
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key][0] += time.perf_counter() - start
            totals[key][1] += 1

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def profile_rounds(backend, make_session, clips, chunk_samples: int) -> dict:
    """Run every clip through a fresh session chunk by chunk; returns {part: [seconds, calls]} plus rounds."""
    from simulst.guards import Guards
    from simulst.session import Session

    totals: dict = defaultdict(lambda: [0.0, 0])
    first = lambda steps: "prefix feed" if steps[0].cache.length == 0 else "token steps"  # noqa: E731
    with (
        timed(backend, "log_mel", totals, "mel"),
        timed(backend, "encode", totals, "encoder+mel"),
        timed(backend, "decode_steps", totals, pick=first),
        timed(Guards, "check", totals, "guards"),
        timed(Session, "_round", totals, "round"),
    ):
        for audio in clips:
            session = make_session()
            with timed(session.policy, "decide", totals, "policy"):
                for start in range(0, len(audio), chunk_samples):
                    session.feed_audio(audio[start : start + chunk_samples])
                session.feed_eof()
            list(session.events())
    encoder = totals.pop("encoder+mel")
    totals["encoder"] = [encoder[0] - totals["mel"][0], encoder[1]]
    rounds = totals.pop("round")
    totals["rest"] = [rounds[0] - sum(totals[p][0] for p in PARTS if p != "rest"), rounds[1]]
    return {"rounds": rounds[1], "round_s": rounds[0], "parts": {p: totals[p] for p in PARTS}}


def format_profile(report: dict, audio_s: float) -> str:
    rounds, total = report["rounds"], report["round_s"]
    lines = ["part\tms per round\tshare\tcalls per round"]
    for part, (seconds, calls) in report["parts"].items():
        lines.append(f"{part}\t{seconds / rounds * 1000:.1f}\t{seconds / total:.0%}\t{calls / rounds:.1f}")
    lines.append(f"round\t{total / rounds * 1000:.1f}\t100%\t{rounds} rounds, RTF {total / audio_s:.3f}")
    return "\n".join(lines)
