"""The WebSocket client of a simulst server (docs/protocol.md), used by ``simulst mic --server`` and
``simulst bench-server``: start a session, send audio from a thread of the caller's, read the events."""

from __future__ import annotations

import json
import threading
from typing import Callable, Iterator

import numpy as np

from simulst.errors import AudioError


class Client:
    """One session on a server: ``with Client(url, start) as c: c.stream(send); for event in c.events(): ...``.

    No keepalive pings: an overloaded server reads frames late (back-pressure) and would miss them."""

    def __init__(self, url: str, start: dict, token: str | None = None) -> None:
        self.url, self.start, self.token = url, start, token
        self.ws = None
        self.ready: dict = {}
        self._sender: threading.Thread | None = None

    def __enter__(self) -> Client:
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self.ws = connect(self.url, additional_headers=headers, max_size=None, ping_interval=None)
        self.ws.send(json.dumps(self.start))
        self.ready = json.loads(self.ws.recv())
        if self.ready.get("type") == "error":
            self.ws.close()
            raise AudioError(f"server refused the session: {self.ready.get('message')}")
        return self

    def __exit__(self, *exc) -> None:
        if self._sender is not None:
            self._sender.join(5)
        self.ws.close()

    def send_audio(self, samples: np.ndarray) -> None:
        """Float samples in [-1, 1] as one 16-bit PCM frame."""
        from simulst.streaming.audio import pcm16

        self.ws.send(pcm16(samples))

    def stream(self, send: Callable[[Client], None]) -> None:
        """Run ``send(self)`` (its ``send_audio`` calls) on a thread of its own, then send the end of input; a
        server that closes first ends it quietly."""
        from websockets.exceptions import ConnectionClosed

        def run() -> None:
            try:
                send(self)
                self.ws.send(json.dumps({"type": "end"}))
            except ConnectionClosed:
                pass

        self._sender = threading.Thread(target=run, daemon=True)
        self._sender.start()

    def events(self) -> Iterator[dict]:
        """The server's events until it closes the session (speech audio frames are skipped)."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                message = self.ws.recv()
                if not isinstance(message, bytes):
                    yield json.loads(message)
        except ConnectionClosed:
            return
