"""The WebSocket server: one Session per connection over a shared model (protocol in docs/protocol.md).

The event loop only moves bytes; a client that sends faster than its rounds run is back-pressured once its inbox
and websockets' bounded queue are full. With ``batching`` (the default) every session's work runs on a thread of
its own and its model calls are gathered across sessions into batches on one model thread (models/batching.py);
without it, sessions take turns on one worker thread, round by round. With ``model_threads`` N, sessions are spread
over N such lanes, which run at once. A session that falls behind real time by more than ``catch_up_s`` gets one
round over the audio that waited (docs/protocol.md). A failing session sends an ``error`` event and is closed; the
others go on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import signal
import time
from collections import Counter
from http import HTTPStatus
from importlib import resources
from typing import Callable

from simulst import build
from simulst.build import ModelSpec, SessionSpec
from simulst.errors import SimulstError
from simulst.events import SpeechOut, event_to_dict
from simulst.session import SessionLike
from simulst.streaming.protocol import INBOX, Connection, ProtocolError, ServerOptions, failure


class Server:
    """Holds the shared backend and the live sessions; ``run`` serves until stopped."""

    def __init__(self, sample_rate: int, make_session: Callable[[SessionSpec], SessionLike], options: ServerOptions = ServerOptions(),
                 health: Callable[[], dict] | None = None, closing: Callable[[], None] | None = None) -> None:
        """``sample_rate``: the model's; ``make_session``: a session for each start message's spec; ``health``:
        more fields for ``/health`` (a Ray front's replicas); ``closing``: run once the server has stopped."""
        self.sample_rate, self.make_session, self.options, self.extra_health = sample_rate, make_session, options, health
        self._closing = closing
        self.active = 0
        self.served = 0
        if options.ray:  # replicas run (and batch) their sessions' calls: here a thread per session waits on them
            self.lanes = [_Lane(batching=False, workers=options.max_sessions)]
        else:
            workers = options.max_sessions if options.batching else 1
            self.lanes = [_Lane(options.batching, workers) for _ in range(options.model_threads)]
        self.stopping = asyncio.Event()

    async def run(self, ready: Callable[[int], None] | None = None) -> None:
        """Serve until stopped (SIGINT, SIGTERM, ``stopping``); open sessions finish their output first."""
        try:
            await self._serve(ready)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the model threads (and what ``closing`` releases); once."""
        lanes, self.lanes = self.lanes, []
        for lane in lanes:
            lane.close()
        closing, self._closing = self._closing, None
        if closing is not None:
            closing()

    async def _serve(self, ready: Callable[[int], None] | None) -> None:
        from websockets.asyncio.server import serve

        # frames above max_frame_bytes still arrive (up to 16x), so that they get an error event, not a dropped
        # connection; no keepalive pings: an overloaded server reads late (back-pressure) and would drop live
        # clients for a missed pong; silent clients are caught by the idle timeout instead
        async with serve(self.handle, self.options.host, self.options.port, process_request=self.http,
                         max_size=16 * self.options.max_frame_bytes, max_queue=8, ping_interval=None) as server:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, self.stopping.set)
                except (ValueError, RuntimeError):  # not the main thread (tests)
                    pass
            port = next(iter(server.sockets)).getsockname()[1]
            if ready:
                ready(port)
            await self.stopping.wait()
            server.close(close_connections=False)  # stop accepting; open sessions finish their output
            await server.wait_closed()

    def http(self, connection, request):
        """Plain HTTP: ``/health`` and the browser page at ``/``; the bearer token check for WebSocket upgrades."""
        if request.path == "/health":
            health = {"status": "ok", "sessions": self.active, "served": self.served}
            batchers = [lane.batcher for lane in self.lanes if lane.batcher is not None]
            if batchers:  # model passes run and calls they served: calls / passes is the batch size
                passes, calls = sum((b.batches for b in batchers), Counter()), sum((b.items for b in batchers), Counter())
                health["batches"] = {name: {"passes": n, "calls": calls[name]} for name, n in passes.items()}
            if len(self.lanes) > 1:
                health["model_threads"] = [lane.sessions for lane in self.lanes]  # sessions on each
            if self.extra_health is not None:
                health.update(self.extra_health())
            return connection.respond(HTTPStatus.OK, json.dumps(health) + "\n")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if request.path not in ("/", "/index.html"):
                return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
            from websockets.datastructures import Headers
            from websockets.http11 import Response

            page = (resources.files("simulst.demos") / "web" / "index.html").read_bytes()
            return Response(200, "OK", Headers([("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))]), page)
        if self.options.token and request.headers.get("Authorization") != f"Bearer {self.options.token}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token\n")
        return None

    async def handle(self, ws) -> None:
        if self.active >= self.options.max_sessions:
            await _send(ws, {"type": "error", "code": "busy", "message": f"server is at its limit of {self.options.max_sessions} sessions"})
            await ws.close(1013, "busy")
            return
        self.active += 1
        lane = min(self.lanes, key=lambda lane: lane.sessions)  # the first of the least loaded
        lane.sessions += 1
        try:
            await self._session(ws, lane)
        finally:
            lane.sessions -= 1
            self.active -= 1
            self.served += 1

    async def _session(self, ws, lane: _Lane) -> None:
        from websockets.exceptions import ConnectionClosed

        connection = Connection(self.options, self.make_session, self.sample_rate)
        try:
            start = await asyncio.wait_for(ws.recv(), self.options.idle_timeout_s)
            ready = await lane.work(connection.start, start)  # may load models: off the loop
        except (ProtocolError, asyncio.TimeoutError) as exc:
            code = exc.code if isinstance(exc, ProtocolError) else "no_start"
            await _send(ws, {"type": "error", "code": code, "message": str(exc) or "no start message"})
            await ws.close(1008, code)
            return
        except ConnectionClosed:
            return
        except Exception as exc:  # noqa: BLE001 - a start that fails for another reason still gets its answer
            await self._fail(ws, exc)
            return
        await _send(ws, ready)
        inbox: asyncio.Queue = asyncio.Queue(INBOX)
        reader = asyncio.create_task(_read(ws, inbox))
        try:
            await self._stream(ws, lane, connection, inbox)
        except ConnectionClosed:
            return  # the client left: the session is dropped
        except Exception as exc:  # noqa: BLE001 - one session's failure must not touch the others
            await self._fail(ws, exc)
        finally:
            reader.cancel()
            connection.close()

    async def _stream(self, ws, lane: _Lane, connection: Connection, inbox: asyncio.Queue) -> None:
        """Audio in, events out, until the client ends (or leaves, or idles); then the final events."""
        while True:
            try:
                messages = [await asyncio.wait_for(inbox.get(), self.options.idle_timeout_s)]
            except asyncio.TimeoutError:
                await _send(ws, connection.idle())
                break
            while not inbox.empty():  # what arrived while the last round ran
                messages.append(inbox.get_nowait())
            batch = connection.receive(messages)
            if batch.left:
                return
            for reply in batch.replies:
                await _send(ws, reply)
            if batch.frames:
                for event in await lane.work(connection.feed, batch):
                    await _emit(ws, event, connection.began)
            if batch.ended:
                break
        for event in await lane.work(connection.finish):
            await _emit(ws, event, connection.began)
        connection.close()  # its place (on a replica) is free before the client hears the close
        await ws.close()

    async def _fail(self, ws, exc: BaseException) -> None:
        event, close = failure(exc)
        await _send(ws, event)
        await ws.close(close, event["code"])


def model_server(model: ModelSpec, options: ServerOptions = ServerOptions()) -> Server:
    """A server of sessions over ``model``: on this process's backend (on a share of the cores per model thread),
    or on Ray replicas that each hold it (``options.ray``)."""
    if options.ray:
        from simulst.streaming.replicas import ReplicaPool

        pool = ReplicaPool(model, options.replicas, options.max_sessions, options.batching, options.address)
        return Server(pool.sample_rate, pool.make_session, options, health=lambda: {"replicas": pool.health()}, closing=pool.close)
    backend = build.model(build.served(model, options.model_threads))
    return Server(backend.sample_rate, functools.partial(build.make, backend), options)


class _Lane:
    """A model thread and the sessions placed on it: with batching, their model calls run in shared passes on its
    batcher (each session's round on a thread of its own); without, their rounds take turns on its one worker."""

    def __init__(self, batching: bool, workers: int) -> None:
        from simulst.models.batching import Batcher

        self.sessions = 0
        self.batcher = Batcher() if batching else None
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="simulst-session")

    async def work(self, fn, *args):
        """``fn(*args)`` off the event loop, its model calls on this lane."""
        loop = asyncio.get_running_loop()
        if self.batcher is None:
            return await loop.run_in_executor(self.worker, fn, *args)
        return await loop.run_in_executor(self.worker, _routed, self.batcher, fn, *args)

    def close(self) -> None:
        self.worker.shutdown(wait=True)
        if self.batcher is not None:
            self.batcher.close()


class Background:
    """A server running on its own thread and event loop (for bench-server and tests)."""

    def __init__(self, server: Server, timeout_s: float = 600.0) -> None:
        import threading

        self.server = server
        ready = threading.Event()

        def on_ready(port: int) -> None:
            self.port, self.loop = port, asyncio.get_running_loop()
            ready.set()

        self.thread = threading.Thread(target=lambda: asyncio.run(server.run(ready=on_ready)), daemon=True)
        self.thread.start()
        if not ready.wait(timeout_s):
            raise SimulstError("the server did not start")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop accepting, let open sessions finish, wait for the thread."""
        self.loop.call_soon_threadsafe(self.server.stopping.set)
        self.thread.join(timeout_s)


async def _send(ws, data: dict | bytes) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        await ws.send(data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False))
    except ConnectionClosed:
        pass


async def _emit(ws, event, began: float) -> None:
    """An event as JSON with the server's wall time; a ``speech`` event is followed by its audio as one binary
    pcm_s16le message."""
    await _send(ws, {**event_to_dict(event), "wall_ms": round((time.monotonic() - began) * 1000, 1)})
    if isinstance(event, SpeechOut):
        from simulst.streaming.audio import pcm16

        await _send(ws, pcm16(event.audio))


def _routed(batcher, fn, *args):
    with batcher.serving():
        return fn(*args)


async def _read(ws, inbox: asyncio.Queue) -> None:
    """Move a client's messages into ``inbox`` (``None`` once it has left); a full inbox stops the reading, and
    websockets' bounded queue then holds the client back."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for message in ws:
            await inbox.put(message)
    except ConnectionClosed:
        pass
    await inbox.put(None)
