"""Replay audio in real time from N concurrent WebSocket clients and measure how far behind the output lags."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from statistics import median

import numpy as np


@dataclass
class ClientResult:
    lags_s: list[float]
    """Per commit: wall time since the client started minus the source time the commit covers."""
    end_delay_s: float
    """Wall time from the end of the audio to the final event."""
    final: str


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def replay(url: str, audio: np.ndarray, start: dict, frame_s: float = 0.1, rate: int = 16000) -> ClientResult:
    """One client: send ``audio`` (float32 mono at ``rate``) paced at real time, collect the events."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from simulst.streaming.audio import pcm16

    step = int(frame_s * rate)
    lags, final, end_delay = [], "", float("nan")
    # no client keepalive: an overloaded server reads frames late (back-pressure) and would miss the pings
    with connect(url, max_size=None, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": rate, "format": "pcm_s16le", **start}))
        json.loads(ws.recv())
        began = time.monotonic()
        audio_end = began + len(audio) / rate

        def send() -> None:
            for i in range(0, len(audio), step):
                # a frame leaves once it has been "captured": at the real time of its last sample
                time.sleep(max(0.0, began + min(i + step, len(audio)) / rate - time.monotonic()))
                ws.send(pcm16(audio[i : i + step]))
            ws.send(json.dumps({"type": "end"}))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            while True:
                event = json.loads(ws.recv())
                now = time.monotonic()
                if event["type"] == "commit":
                    lags.append(now - began - event["source_ms"] / 1000)
                elif event["type"] == "final":
                    final, end_delay = event["text"], now - audio_end
        except ConnectionClosed:
            pass
        sender.join(5)
    return ClientResult(lags, end_delay, final)


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


def bench(url: str, audio: np.ndarray, clients: int, start: dict) -> dict:
    """Run ``clients`` replays at once (once the server is idle); summary figures (seconds) over their commits."""
    wait_idle(url)
    results: list[ClientResult | None] = [None] * clients

    def run(i: int) -> None:
        results[i] = replay(url, audio, start)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [r for r in results if r is not None]
    lags = [lag for r in done for lag in r.lags_s]
    end_delays = [r.end_delay_s for r in done]
    return {
        "clients": clients,
        "lag_p50_s": _percentile(lags, 50),
        "lag_p95_s": _percentile(lags, 95),
        "end_delay_median_s": median(end_delays) if end_delays else float("nan"),
        "end_delay_max_s": max(end_delays) if end_delays else float("nan"),
        "real_time": bool(end_delays) and max(end_delays) <= 3.0,
        "finals": [r.final for r in done],
    }
