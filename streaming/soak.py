"""Soak test: stream hours of audio through one session and measure whether cost and memory stay flat.

The input is a cycle of audio repeated; the stream is made a whole number of cycles plus one window long, so
that its first and last windows hold the same audio and differ only in how much history came before. Per chunk
the report keeps what the session did (its compute, its sequential decoder steps, the audio it still buffers) and
the process's memory: the work is a property of the code, the compute also of the machine's load.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Callable

import numpy as np

from simulst.errors import SimulstError


def rss_mb() -> float:
    """The process's resident memory now (Linux /proc), else its peak so far."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * resource.getpagesize() / 2**20
    return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


@dataclass
class SoakReport:
    chunk_ms: int
    window_s: float
    cycle_s: float
    stream_s: float
    wall_s: float = 0.0
    chunk_compute_s: list[float] = field(default_factory=list)
    """The session's compute per chunk fed (its rounds' clock time)."""
    chunk_steps: list[int] = field(default_factory=list)
    """Sequential decoder passes per chunk fed."""
    buffered_s: list[float] = field(default_factory=list)
    """Audio the session still buffers after each chunk."""
    rss_mb: list[float] = field(default_factory=list)
    """Resident memory after each chunk (the summary compares windows by their maxima and by their medians: a leak
    raises the median, a transient allocation of a few tens of MB only the maximum)."""
    peak_first_mb: float = 0.0
    """The process's peak memory at the end of the first window."""
    peak_last_mb: float = 0.0
    """The process's peak memory at the end of the last window (before the end of input is fed)."""
    guards: int = 0
    words: int = 0

    @property
    def _per_window(self) -> int:
        return round(self.window_s * 1000 / self.chunk_ms)

    def summary(self) -> dict:
        n, half = self._per_window, len(self.rss_mb) // 2
        first, last = self.chunk_compute_s[:n], self.chunk_compute_s[-n:]
        return {
            "steps_first": mean(self.chunk_steps[:n]), "steps_last": mean(self.chunk_steps[-n:]),
            "buffered_max_s": max(self.buffered_s), "buffered_first_s": mean(self.buffered_s[:n]), "buffered_last_s": mean(self.buffered_s[-n:]),
            "stream_s": self.stream_s, "cycle_s": self.cycle_s, "window_s": self.window_s, "chunk_ms": self.chunk_ms,
            "chunks": len(self.chunk_compute_s), "wall_s": round(self.wall_s, 1), "rtf": sum(self.chunk_compute_s) / self.stream_s,
            "compute_first_s": mean(first), "compute_last_s": mean(last), "compute_ratio": mean(last) / mean(first),
            "rss_first_max_mb": max(self.rss_mb[:n]), "rss_last_max_mb": max(self.rss_mb[-n:]),
            "rss_mid_median_mb": median(self.rss_mb[half : half + n]), "rss_last_median_mb": median(self.rss_mb[-n:]),
            "peak_first_mb": self.peak_first_mb, "peak_last_mb": self.peak_last_mb, "guards": self.guards, "words": self.words,
        }

    def to_json(self) -> dict:
        return {"summary": self.summary(), **asdict(self)}


def cycle_of(clips: list[np.ndarray], window_s: float, rate: int) -> np.ndarray:
    """The clips joined into one cycle, repeated into one window's worth if shorter."""
    cycle = np.concatenate(clips)
    if len(cycle) < window_s * rate:
        cycle = np.tile(cycle, int(np.ceil(window_s * rate / len(cycle))))
    return cycle


def soak(
    session, cycle: np.ndarray, rate: int, minutes: float = 60.0, window_s: float = 300.0, chunk_ms: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """Feed ``cycle`` (mono float32 at ``rate``) repeated for at least ``minutes`` in ``chunk_ms`` chunks."""
    cycle_s = len(cycle) / rate
    if cycle_s < window_s:
        raise SimulstError(f"the audio cycle ({cycle_s:.0f} s) must be at least one window ({window_s:.0f} s) long")
    cycles = max(1, math.ceil((minutes * 60 - window_s) / cycle_s))
    total = cycles * len(cycle) + int(window_s * rate)
    report = SoakReport(chunk_ms, window_s, cycle_s, total / rate)
    step = chunk_ms * rate // 1000
    began, mark = time.perf_counter(), window_s
    for at in range(0, total, step):
        piece = np.take(cycle, np.arange(at, min(at + step, total)), mode="wrap")
        spent, steps = session.compute_s, session.decoder_steps
        session.feed_audio(piece)
        for event in session.events():
            report.guards += event.type == "guard"
        report.chunk_compute_s.append(session.compute_s - spent)
        report.chunk_steps.append(session.decoder_steps - steps)
        report.buffered_s.append(session.buffered_ms / 1000)
        report.rss_mb.append(rss_mb())
        if len(report.chunk_compute_s) == report._per_window:
            report.peak_first_mb = peak_rss_mb()
        done = min(at + step, total) / rate
        if progress and done >= mark:
            mark += window_s
            recent = report.chunk_compute_s[-report._per_window :]
            progress(f"[{done / 60:5.1f}/{total / rate / 60:.1f} min] compute per chunk {mean(recent):.3f} s, RSS {report.rss_mb[-1]:.0f} MB")
    report.peak_last_mb = peak_rss_mb()
    session.feed_eof()
    for event in session.events():
        report.guards += event.type == "guard"
        if event.type == "final":
            report.words = len(event.text.split())
    report.wall_s = time.perf_counter() - began
    return report
