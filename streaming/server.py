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
import dataclasses
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from typing import Any, Callable

import numpy as np

from simulst import registry
from simulst.errors import SimulstError
from simulst.events import SpeechOut, event_to_dict
from simulst.options import SessionOptions, from_mapping, opt

INBOX = 256
"""Messages of a session read ahead of its rounds (25 s of 100 ms frames) before the client is held back."""
FORMATS = {"pcm_s16le": (np.int16, 32768.0), "f32le": (np.float32, 1.0)}


@dataclass(frozen=True)
class ServerOptions:
    """Limits and access of ``simulst serve``."""

    host: str = opt("127.0.0.1", "address to listen on")
    port: int = opt(8765, "TCP port (0: any free port)")
    max_sessions: int = opt(8, "concurrent sessions; more are refused with an error 'busy'")
    max_frame_bytes: int = opt(1 << 20, "largest audio frame accepted; larger ones get an error 'frame_too_large'")
    max_session_s: float = opt(3600.0, "longest audio a session may stream (seconds of audio)")
    idle_timeout_s: float = opt(30.0, "a session that sends nothing for this long is finished")
    token: str | None = opt(None, "require 'Authorization: Bearer TOKEN' when set")
    batching: bool = opt(True, "run the model calls of all sessions together in batches (off: sessions take turns, round by round)")
    model_threads: int = opt(
        1,
        "model threads: each new session goes to the one with the fewest sessions and its model calls run there "
        "(batched with its neighbours' under --batching); each gets cores / N threads and the CTranslate2 encoder a "
        "worker each. 1 (with batching, the CTranslate2 encoder's passes run beside the batches) serves 4 streams "
        "on 2 cores as well as 2 does and gives a lone stream every core",
    )
    catch_up_s: float = opt(
        2.0,
        "when more than this much of a live session's audio (seconds) waits behind its rounds and the session is "
        "that far behind real time (the server is overloaded), run one round over all of it instead of one per "
        "chunk: lag stops growing, at the price of output that then depends on the load (0: never; every chunk "
        "gets its round, however late). A client that sends faster than real time is never behind",
    )
    ray: bool = opt(False, "sessions on Ray actors (replicas) that each hold the model; this process is the WebSocket front (pip install 'simulst[ray]')")
    replicas: int = opt(2, "with --ray: model replicas; each new session goes to the one with the fewest sessions")
    address: str | None = opt(None, "with --ray: the Ray cluster to join (auto, or HOST:PORT); default: a local Ray started here")


class Server:
    """Holds the shared backend and the live sessions; ``run`` serves until stopped."""

    def __init__(self, backend, make_session: Callable[[SessionOptions, str, dict], Any], options: ServerOptions = ServerOptions()) -> None:
        self.backend, self.make_session, self.options = backend, make_session, options
        self.active = 0
        self.served = 0
        if options.model_threads < 1:
            raise SimulstError(f"--model-threads must be at least 1, not {options.model_threads}")
        if options.ray:  # replicas run (and batch) their sessions' calls: here a thread per session waits on them
            if options.model_threads != 1:
                raise SimulstError("--model-threads is the plain server's: with --ray, use --replicas")
            self.lanes = [_Lane(batching=False, workers=options.max_sessions)]
        else:
            workers = options.max_sessions if options.batching else 1
            self.lanes = [_Lane(options.batching, workers) for _ in range(options.model_threads)]
        self.stopping = asyncio.Event()

    async def run(self, ready: Callable[[int], None] | None = None) -> None:
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
        for lane in self.lanes:
            lane.close()

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
            if hasattr(self.backend, "health"):  # a Ray front: every replica
                health["replicas"] = self.backend.health()
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

        try:
            start = await asyncio.wait_for(ws.recv(), self.options.idle_timeout_s)
            config = await lane.work(self._start, start)  # may load models: off the loop
        except (SimulstError, asyncio.TimeoutError) as exc:
            code = "no_start" if isinstance(exc, asyncio.TimeoutError) else "bad_start"
            await _send(ws, {"type": "error", "code": code, "message": str(exc) or "no start message"})
            await ws.close(1008, code)
            return
        except ConnectionClosed:
            return
        session, dtype, scale, rate = config
        began, received, fed = time.monotonic(), 0, 0
        await _send(ws, {"type": "ready", "sample_rate": rate})
        inbox: asyncio.Queue = asyncio.Queue(INBOX)
        reader = asyncio.create_task(_read(ws, inbox))
        try:
            ended = False
            while not ended:
                try:
                    messages = [await asyncio.wait_for(inbox.get(), self.options.idle_timeout_s)]
                except asyncio.TimeoutError:
                    await _send(ws, {"type": "error", "code": "idle", "message": "no audio for too long: finishing"})
                    break
                while not inbox.empty():  # what arrived while the last round ran
                    messages.append(inbox.get_nowait())
                frames = []
                for message in messages:
                    if message is None:
                        return  # the client left: the session is dropped
                    if isinstance(message, str) and _is_end(message):
                        ended = True
                        break
                    error = self._frame_error(message, dtype)
                    if error:
                        await _send(ws, {"type": "error", **error})
                        continue
                    samples = np.frombuffer(message, dtype=dtype).astype(np.float32) / scale
                    received += len(samples)
                    if received / rate > self.options.max_session_s:
                        await _send(ws, {"type": "error", "code": "too_long", "message": f"sessions are limited to {self.options.max_session_s:.0f} s of audio"})
                        ended = True
                        break
                    frames.append(samples)
                if frames:  # late: more than catch_up_s of audio waits and the session is that far behind real time
                    waiting, behind = sum(map(len, frames)), (time.monotonic() - began) * rate - fed  # in samples
                    late = 0 < self.options.catch_up_s * rate < min(waiting, behind)
                    fed += waiting
                    for event in await lane.work(_feed, session, frames, rate, self.backend.sample_rate, late):
                        await _emit(ws, event, began)
            for event in await lane.work(_finish, session):
                await _emit(ws, event, began)
            await ws.close()
        except ConnectionClosed:
            return  # the client left: the session is dropped
        except SimulstError as exc:
            code = getattr(exc, "code", "bad_audio")
            await _send(ws, {"type": "error", "code": code, "message": str(exc)})
            await ws.close(1008 if code == "bad_audio" else 1011, code)
        except Exception as exc:  # noqa: BLE001 - one session's failure must not touch the others
            await _send(ws, {"type": "error", "code": "internal", "message": f"{type(exc).__name__}: {exc}"})
            await ws.close(1011, "internal")
        finally:
            reader.cancel()
            if hasattr(session, "close"):  # a session on a replica gives its place back
                session.close()

    def _frame_error(self, message, dtype) -> dict | None:
        """The error of a message that is not an audio frame of this session (None: it is one)."""
        if isinstance(message, str):
            return {"code": "bad_message", "message": "expected binary audio or {\"type\": \"end\"}"}
        if len(message) > self.options.max_frame_bytes:
            return {"code": "frame_too_large", "message": f"frames must be at most {self.options.max_frame_bytes} bytes"}
        if len(message) % np.dtype(dtype).itemsize:
            return {"code": "bad_frame", "message": f"frame length {len(message)} is not a whole number of samples"}
        return None

    def _start(self, message) -> tuple:
        if not isinstance(message, str):
            raise SimulstError("the first message must be a JSON start message, not audio")
        try:
            start = json.loads(message)
        except json.JSONDecodeError as exc:
            raise SimulstError(f"start message is not JSON: {exc}") from None
        if not isinstance(start, dict) or start.get("type") != "start":
            raise SimulstError('the first message must be {"type": "start", ...}')
        fields = dict(start)
        fields.pop("type")
        rate = fields.pop("sample_rate", 16000)
        fmt = fields.pop("format", "pcm_s16le")
        if not isinstance(rate, int) or not 8000 <= rate <= 192000:
            raise SimulstError(f"sample_rate must be an integer from 8000 to 192000, not {rate!r}")
        if fmt not in FORMATS:
            raise SimulstError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        policy = fields.pop("policy", "alignatt")
        registry.policies.get(policy)
        session_fields = {f.name for f in dataclasses.fields(SessionOptions)}
        options = from_mapping(SessionOptions, {k: v for k, v in fields.items() if k in session_fields}, "session")
        rest = {k: v for k, v in fields.items() if k not in session_fields}
        session = self.make_session(options, policy, rest)
        return (session, *FORMATS[fmt], rate)


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


def _is_end(message: str) -> bool:
    try:
        return json.loads(message) == {"type": "end"}
    except json.JSONDecodeError:
        return False


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


def _feed(session, frames: list[np.ndarray], rate: int, target: int, catch_up: bool = False) -> list:
    from simulst.streaming.audio import resample

    session.feed_audio(np.concatenate([resample(frame, rate, target) for frame in frames]), catch_up)
    return list(session.events())


def _finish(session) -> list:
    session.feed_eof()
    return list(session.events())


def session_factory(backend) -> Callable[[SessionOptions, str, dict], Any]:
    """Sessions for ``start`` messages: policy options and cascade options come flat beside the session's."""
    from simulst import build
    from simulst.cascade import CascadeOptions
    from simulst.errors import OptionError

    from simulst.streaming.speech import SpeakingSession, SpeechOptions, speaker_for

    def make(options: SessionOptions, policy: str, rest: dict):
        rest = dict(rest)
        speech = rest.pop("speech", False)
        if not isinstance(speech, bool):
            raise OptionError(f"speech must be true or false, not {speech!r}")
        fields = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in
                  (("policy", registry.policies.get(policy).Options), ("cascade", CascadeOptions), ("speech", SpeechOptions))}
        unknown = sorted(set(rest) - set().union(*fields.values()))
        if unknown:
            raise OptionError(f"unknown start field(s): {', '.join(unknown)}")
        pick = {name: {k: v for k, v in rest.items() if k in names} for name, names in fields.items()}
        if pick["speech"] and not speech:
            raise OptionError(f"{', '.join(pick['speech'])} need(s) \"speech\": true")
        policy_obj = build.policy(policy, pick["policy"])
        cascade = from_mapping(CascadeOptions, pick["cascade"], "cascade")
        session = build.session(backend, policy_obj, options, cascade=cascade)
        if not speech:
            return session
        speech_options = from_mapping(SpeechOptions, pick["speech"], "speech")
        target = options.src_lang if options.task == "transcribe" else options.tgt_lang
        if target is None:
            raise OptionError("speech needs the output language: give src_lang (transcribe) or tgt_lang")
        return SpeakingSession(session, speaker_for(target, speech_options), speech_options)

    return make
