"""The microphone demo: capture the default input, translate live, show committed text and the provisional tail.

Runs the model locally, or streams to a ``simulst serve`` server (``--server ws://...``). Ctrl-C (or
``--seconds``) ends the input; the final translation is printed.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from simulst.errors import AudioError

SAMPLE_RATE = 16000
BLOCK_S = 0.1


def microphone(device: str | int | None, seconds: float | None, stop: threading.Event) -> Iterator[np.ndarray]:
    """Blocks of float32 mono 16 kHz audio from an input device (PortAudio), until ``stop`` or ``seconds``."""
    try:
        import sounddevice
    except OSError as exc:  # PortAudio missing
        raise AudioError(f"no audio input: {exc} (apt-get install libportaudio2)") from exc
    blocks: queue.Queue[np.ndarray] = queue.Queue()
    try:
        stream = sounddevice.InputStream(
            samplerate=SAMPLE_RATE, channels=1, dtype="int16", blocksize=int(SAMPLE_RATE * BLOCK_S), device=device,
            callback=lambda data, frames, t, status: blocks.put(data[:, 0].astype(np.float32) / 32768),
        )
    except (sounddevice.PortAudioError, ValueError) as exc:
        raise AudioError(f"cannot open the input device {device if device is not None else '(default)'}: {exc}") from exc
    taken = 0
    with stream:
        while not stop.is_set() and (seconds is None or taken < seconds * SAMPLE_RATE):
            try:
                block = blocks.get(timeout=5.0)
            except queue.Empty:
                print("simulst: the input device stopped delivering audio: finishing", file=sys.stderr)
                return
            taken += len(block)
            yield block


@dataclass
class Transcript:
    """What the screen shows: committed text, the provisional tail, and the lag of the last commit."""

    committed: str = ""
    partial: str = ""
    lag_s: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def apply(self, event: dict, audio_s: float) -> None:
        if event["type"] == "commit":
            self.committed += event["text"]
            self.partial = ""
            self.lag_s = max(0.0, audio_s - event["source_ms"] / 1000)
        elif event["type"] == "partial":
            self.partial = event["text"]
        elif event["type"] == "final":
            self.committed, self.partial = event["text"], ""

    def render(self):
        from rich.text import Text

        text = Text(self.committed.strip(), style="bold")
        if self.partial:
            text.append(" " + self.partial.strip(), style="dim italic")
        text.append(f"\n[lag {self.lag_s:4.1f} s]", style="cyan")
        return text


def run_local(blocks: Iterator[np.ndarray], session, show: Callable[[dict, float], None]) -> None:
    """Feed the blocks to ``session`` (a ``SessionLike``) as they come, showing each event with the audio heard."""
    from simulst.events import event_to_dict

    audio = 0
    for block in blocks:
        audio += len(block)
        session.feed_audio(block)
        for event in session.events():
            show(event_to_dict(event), audio / SAMPLE_RATE)
    session.feed_eof()
    for event in session.events():
        show(event_to_dict(event), audio / SAMPLE_RATE)


def run_remote(blocks: Iterator[np.ndarray], url: str, start: dict, show: Callable[[dict, float], None], token: str | None = None) -> None:
    from simulst.streaming.client import Client

    sent = [0]

    def send(client: Client) -> None:
        for block in blocks:
            client.send_audio(block)
            sent[0] += len(block)

    with Client(url, start, token) as client:
        client.stream(send)
        for event in client.events():
            show(event, sent[0] / SAMPLE_RATE)
