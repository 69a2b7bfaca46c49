"""Replay audio in real time from N concurrent WebSocket clients and measure how far behind the output lags,
whether any commit was lost or came out of order, and (for a server in this process) its memory over time."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from statistics import median

import numpy as np

from simulst.eval.quality import wer

END_DELAY_S = 1.5
LAG_P95_S = 2.5
"""A client count is real time when every final arrives within END_DELAY_S of the end of its audio, the lag
of 95% of the commits is at most LAG_P95_S, and nothing is lost or out of order."""


@dataclass
class ClientResult:
    lags_s: list[float] = field(default_factory=list)
    """Per commit: wall time since the client started minus the source time the commit covers."""
    end_delay_s: float = float("nan")
    """Wall time from the end of the audio to the final event."""
    final: str | None = None
    commits: list[str] = field(default_factory=list)
    sources_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def reordered(self) -> int:
        """Commits whose source time is earlier than the one before."""
        return sum(b < a for a, b in zip(self.sources_ms, self.sources_ms[1:]))

    @property
    def dropped(self) -> bool:
        """No final, or the commits do not add up to it."""
        return self.final is None or "".join(self.commits).strip() != self.final


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def replay(url: str, audio: np.ndarray, start: dict, frame_s: float = 0.1, rate: int = 16000) -> ClientResult:
    """One client: send ``audio`` (float32 mono at ``rate``) paced at real time, collect the events."""
    from simulst.streaming.client import Client

    step = int(frame_s * rate)
    result = ClientResult()
    with Client(url, start) as client:
        began = time.monotonic()
        audio_end = began + len(audio) / rate

        def send(client: Client) -> None:
            for i in range(0, len(audio), step):
                # a frame leaves once it has been "captured": at the real time of its last sample
                time.sleep(max(0.0, began + min(i + step, len(audio)) / rate - time.monotonic()))
                client.send_audio(audio[i : i + step])

        client.stream(send)
        for event in client.events():
            now = time.monotonic()
            if event["type"] == "commit":
                result.lags_s.append(now - began - event["source_ms"] / 1000)
                result.commits.append(event["text"])
                result.sources_ms.append(event["source_ms"])
            elif event["type"] == "final":
                result.final, result.end_delay_s = event["text"], now - audio_end
            elif event["type"] == "error":
                result.errors.append(event.get("code", "?"))
    return result


def wait_idle(url: str, timeout_s: float = 600.0) -> None:
    """Wait until the server reports no open session (its /health endpoint)."""
    import urllib.request

    health = url.replace("ws://", "http://").rstrip("/") + "/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(health, timeout=10) as r:
            if json.loads(r.read())["sessions"] == 0:
                return
        time.sleep(0.5)


def bench(url: str, clips: list[np.ndarray], clients: int, start: dict, solo: list[str] | None = None,
          memory=None, stagger_s: float = 0.3) -> dict:
    """Run ``clients`` replays at once (once the server is idle), client i playing ``clips[i % len(clips)]`` and
    starting ``i * stagger_s`` after the first. Summary figures in seconds; ``differ`` counts the clients whose
    final is not ``solo`` (each clip's output alone) and ``differ_wer`` by how much (word error rate, %, of the
    finals against it); ``memory()`` (MB), when given, is sampled every second."""
    wait_idle(url)
    results: list[ClientResult | None] = [None] * clients
    rss: list[tuple[float, float]] = []
    done = threading.Event()
    began = time.monotonic()

    def run(i: int) -> None:
        time.sleep(i * stagger_s)
        try:
            results[i] = replay(url, clips[i % len(clips)], start)
        except OSError as exc:
            results[i] = ClientResult(errors=[f"{type(exc).__name__}: {exc}"])

    def sample() -> None:
        while not done.wait(1.0):
            rss.append((round(time.monotonic() - began, 1), round(memory(), 1)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    sampler = threading.Thread(target=sample, daemon=True) if memory else None
    for t in threads + ([sampler] if sampler else []):
        t.start()
    if memory:
        rss.append((0.0, round(memory(), 1)))
    for t in threads:
        t.join()
    done.set()
    got = [r for r in results if r is not None]
    alone_finals = [solo[i % len(solo)] for i, r in enumerate(results) if r is not None] if solo else None
    lags = [lag for r in got for lag in r.lags_s]
    end_delays = [r.end_delay_s for r in got]
    report = {
        "clients": clients,
        "lag_p50_s": _percentile(lags, 50),
        "lag_p95_s": _percentile(lags, 95),
        "worst_client_lag_p95_s": max((_percentile(r.lags_s, 95) for r in got if r.lags_s), default=float("nan")),
        "end_delay_median_s": median(end_delays) if end_delays else float("nan"),
        "end_delay_max_s": max(end_delays) if end_delays else float("nan"),
        "dropped": sum(r.dropped for r in got) + clients - len(got),
        "reordered": sum(r.reordered for r in got),
        "errors": [e for r in got for e in r.errors],
        "differ": sum(r.final != alone for r, alone in zip(got, alone_finals)) if solo else None,
        "differ_wer": wer([r.final for r in got], alone_finals) if solo else None,
        "rss_mb": rss,
        "finals": [r.final for r in got],
    }
    report["real_time"] = bool(
        end_delays and report["end_delay_max_s"] <= END_DELAY_S and report["lag_p95_s"] <= LAG_P95_S
        and not report["dropped"] and not report["reordered"] and not report["errors"]
    )
    return report


def alone(server, audio: np.ndarray, start: dict, frame_s: float = 0.1) -> str:
    """The final text of ``audio`` in a session of ``server``'s made from the ``start`` message, fed in frames as
    a client sends them (16-bit PCM, as ``replay`` does), with no other session: what a client must get whoever
    else is connected."""
    import dataclasses

    from simulst.streaming.audio import pcm16
    from simulst.streaming.protocol import Connection

    connection = Connection(dataclasses.replace(server.options, catch_up_s=0), server.make_session, server.sample_rate)
    connection.start(json.dumps(start))
    step = int(frame_s * connection.rate)
    for i in range(0, len(audio), step):
        connection.feed(connection.receive([pcm16(audio[i : i + step])]))
    return next(e.text for e in connection.finish() if e.type == "final")


def repeat_to(clip: np.ndarray, minutes: float, rate: int) -> np.ndarray:
    """``clip`` repeated to ``minutes`` of audio (a soak under load); as it is for 0."""
    if not minutes:
        return clip
    samples = int(minutes * 60 * rate)
    return np.tile(clip, int(np.ceil(samples / len(clip))))[:samples]


def bench_servers(model, spec, clips: list[np.ndarray], clients: list[int], servers: list, url: str | None = None, show=print) -> list[dict]:
    """The bench table: for each server configuration in ``servers`` (``ServerOptions``; each started here in
    turn, with each clip's output alone as the reference and its memory sampled), or for the running server at
    ``url``, one report per client count; ``show`` gets each table row as it comes."""
    from simulst.streaming.protocol import start_message
    from simulst.streaming.server import Background, model_server
    from simulst.streaming.soak import rss_mb

    start = start_message(spec)
    reports = []
    for options in servers or [None]:
        running, target, solo, memory = None, url, None, None
        if options is not None:
            server = model_server(model, options)
            running, solo, memory = Background(server), [alone(server, clip, start) for clip in clips], rss_mb
            target = running.url
        for n in clients:
            report = bench(target, clips, n, start, solo, memory)
            reports.append({"batching": None if options is None else options.batching, **report})
            show(row(report, "-" if options is None else "on" if options.batching else "off"))
        if running is not None:
            running.stop()
    return reports


def row(report: dict, batching: str) -> str:
    """A line of the bench-server table (see HEADER)."""
    rss = [mb for _, mb in report["rss_mb"]]
    memory = f"{rss[0]:.0f}/{max(rss):.0f}/{rss[-1]:.0f}" if rss else "-"
    differ = "-" if report["differ"] is None else f"{report['differ']}/{report['clients']}"
    if report["differ"]:  # how much: word error rate of the finals against the outputs alone
        differ += f" ({report['differ_wer']:.1f}% words)"
    return "\t".join([
        str(report["clients"]), batching, f"{report['lag_p50_s']:.2f}", f"{report['lag_p95_s']:.2f}",
        f"{report['worst_client_lag_p95_s']:.2f}", f"{report['end_delay_median_s']:.2f}", f"{report['end_delay_max_s']:.2f}",
        str(report["dropped"]), str(report["reordered"]), differ, memory, "yes" if report["real_time"] else "no",
    ])


HEADER = "\t".join([
    "clients", "batching", "lag_p50_s", "lag_p95_s", "worst_client_p95_s", "end_delay_median_s", "end_delay_max_s",
    "dropped", "reordered", "differ_from_solo", "rss_mb_start/max/end", "real_time",
])
