"""The WebSocket session protocol without the sockets (docs/protocol.md): what the server's asyncio handler
drives and tests call directly.

A ``Connection`` takes one client's messages as they arrive: the JSON start message (validated into the
session it describes), then binary audio frames and ``{"type": "end"}``. It checks each frame and the
session's limits, decides when a session that fell behind real time catches up, and says what to send back;
``feed`` and ``finish`` run the session's rounds (model work, which the server runs off its event loop). No
socket, no event loop, no thread: the server moves bytes, the connection decides.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from simulst import registry
from simulst.build import DEFAULT_POLICY, SessionSpec
from simulst.cascade import CascadeOptions
from simulst.errors import OptionError, SimulstError
from simulst.events import Event
from simulst.options import Options, SessionOptions, from_mapping, opt
from simulst.session import SessionLike
from simulst.streaming.speech import SpeechOptions

INBOX = 256
"""Messages of a session read ahead of its rounds (25 s of 100 ms frames) before the client is held back."""
FORMATS = {"pcm_s16le": (np.int16, 32768.0), "f32le": (np.float32, 1.0)}
RATES = (8000, 192000)


@dataclass(frozen=True)
class ServerOptions(Options):
    """Limits and access of ``simulst serve``."""

    host: str = opt("127.0.0.1", "address to listen on")
    port: int = opt(8765, "TCP port (0: any free port)", min=0, max=65535)
    max_sessions: int = opt(8, "concurrent sessions; more are refused with an error 'busy'", min=1)
    max_frame_bytes: int = opt(1 << 20, "largest audio frame accepted; larger ones get an error 'frame_too_large'", min=4)
    max_session_s: float = opt(3600.0, "longest audio a session may stream (seconds of audio)", min=1)
    idle_timeout_s: float = opt(30.0, "a session that sends nothing for this long is finished", min=0.1)
    token: str | None = opt(None, "require 'Authorization: Bearer TOKEN' when set")
    batching: bool = opt(True, "run the model calls of all sessions together in batches (off: sessions take turns, round by round)")
    model_threads: int = opt(
        1,
        "model threads: each new session goes to the one with the fewest sessions and its model calls run there "
        "(batched with its neighbours' under --batching); each gets cores / N threads and the CTranslate2 encoder a "
        "worker each. 1 (with batching, the CTranslate2 encoder's passes run beside the batches) serves 4 streams "
        "on 2 cores as well as 2 does and gives a lone stream every core", min=1,
    )
    catch_up_s: float = opt(
        2.0,
        "when more than this much of a live session's audio (seconds) waits behind its rounds and the session is "
        "that far behind real time (the server is overloaded), run one round over all of it instead of one per "
        "chunk: lag stops growing, at the price of output that then depends on the load (0: never; every chunk "
        "gets its round, however late). A client that sends faster than real time is never behind", min=0,
    )
    ray: bool = opt(False, "sessions on Ray actors (replicas) that each hold the model; this process is the WebSocket front (pip install 'simulst[ray]')")
    replicas: int = opt(2, "with --ray: model replicas; each new session goes to the one with the fewest sessions", min=1)
    address: str | None = opt(None, "with --ray: the Ray cluster to join (auto, or HOST:PORT); default: a local Ray started here")

    def check(self) -> None:
        if self.ray and self.model_threads != 1:
            raise OptionError("--model-threads is the plain server's: with --ray, use --replicas")


class ProtocolError(SimulstError):
    """A message the protocol refuses; ``code`` is the error event's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def start_spec(fields: dict[str, Any]) -> SessionSpec:
    """The session a start message's fields (without ``type``, ``sample_rate`` and ``format``) describe: session
    options, ``policy`` and its options, cascade options, ``speech`` and speech options, all side by side."""
    fields = dict(fields)
    policy = fields.pop("policy", DEFAULT_POLICY)
    speech = fields.pop("speech", False)
    if not isinstance(policy, str):
        raise OptionError(f"policy must be a name, not {policy!r}")
    if not isinstance(speech, bool):
        raise OptionError(f"speech must be true or false, not {speech!r}")
    groups = {"session": SessionOptions, "policy": registry.policies.get(policy).Options, "cascade": CascadeOptions, "speech": SpeechOptions}
    names = {group: {f.name for f in dataclasses.fields(cls)} for group, cls in groups.items()}
    unknown = sorted(set(fields) - set().union(*names.values()))
    if unknown:
        raise OptionError(f"unknown start field(s): {', '.join(unknown)}")
    picked = {group: from_mapping(cls, {k: v for k, v in fields.items() if k in names[group]}, group) for group, cls in groups.items()}
    if not speech and any(k in names["speech"] for k in fields):
        raise OptionError(f"{', '.join(k for k in fields if k in names['speech'])} need(s) \"speech\": true")
    return SessionSpec(picked["session"], policy, picked["policy"], picked["cascade"], picked["speech"] if speech else None)


def start_message(spec: SessionSpec, sample_rate: int = 16000, fmt: str = "pcm_s16le") -> dict:
    """The start message of a client that wants the session ``spec`` describes (``start_spec``'s inverse)."""
    fields: dict[str, Any] = {"type": "start", "sample_rate": sample_rate, "format": fmt, "policy": spec.policy}
    groups = [spec.options, spec.policy_options, spec.cascade] + ([spec.speech] if spec.speech else [])
    fields.update({k: v for options in groups for k, v in dataclasses.asdict(options).items() if v is not None})
    if spec.speech:
        fields["speech"] = True
    return fields


@dataclass
class Batch:
    """What a batch of a client's messages amounts to."""

    frames: list[np.ndarray] = field(default_factory=list)
    """Audio to feed, at the client's rate (float32)."""
    catch_up: bool = False
    """The session is behind real time: one round over all of it."""
    replies: list[dict] = field(default_factory=list)
    """Error events to send (a bad frame is answered and skipped; the session goes on)."""
    ended: bool = False
    """``end`` arrived, or a limit ended the session: finish it."""
    left: bool = False
    """The client left: drop the session."""


class Connection:
    """One client's session, message by message; ``clock`` gives seconds (real time, for catching up)."""

    def __init__(self, options: ServerOptions, make_session: Callable[[SessionSpec], SessionLike], model_rate: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options, self.make_session, self.model_rate, self.clock = options, make_session, model_rate, clock
        self.session: SessionLike | None = None
        self.rate, self.received, self.fed, self.began = 0, 0, 0, 0.0

    def start(self, message: str | bytes) -> dict:
        """Make the session a start message asks for; returns the ``ready`` event. Raises ``ProtocolError``
        (``bad_start``) for anything else, a bad option included."""
        try:
            rate, self._dtype, self._scale, spec = _parse_start(message)
            self.session = self.make_session(spec)
        except SimulstError as exc:
            raise ProtocolError(exc.code or "bad_start", str(exc)) from exc
        self.rate, self.began = rate, self.clock()
        return {"type": "ready", "sample_rate": rate}

    def receive(self, messages: list) -> Batch:
        """Check the messages that arrived since the last call (``None`` for a client that left)."""
        batch = Batch()
        for message in messages:
            if message is None:
                batch.left = True
                return batch
            if isinstance(message, str) and _is_end(message):
                batch.ended = True
                break
            error = self._frame_error(message)
            if error:
                batch.replies.append({"type": "error", **error})
                continue
            samples = np.frombuffer(message, dtype=self._dtype).astype(np.float32) / self._scale
            self.received += len(samples)
            if self.received / self.rate > self.options.max_session_s:
                batch.replies.append({"type": "error", "code": "too_long", "message": f"sessions are limited to {self.options.max_session_s:.0f} s of audio"})
                batch.ended = True
                break
            batch.frames.append(samples)
        if batch.frames:  # late: more than catch_up_s of audio waits and the session is that far behind real time
            waiting, behind = sum(map(len, batch.frames)), (self.clock() - self.began) * self.rate - self.fed  # in samples
            batch.catch_up = 0 < self.options.catch_up_s * self.rate < min(waiting, behind)
            self.fed += waiting
        return batch

    def feed(self, batch: Batch) -> list[Event]:
        """Feed a batch's audio to the session (its rounds run here): the events they emit."""
        from simulst.streaming.audio import resample

        samples = np.concatenate([resample(frame, self.rate, self.model_rate) for frame in batch.frames])
        self.session.feed_audio(samples, batch.catch_up)
        return list(self.session.events())

    def finish(self) -> list[Event]:
        """End of input: the session's last events, ``final`` among them."""
        self.session.feed_eof()
        return list(self.session.events())

    def idle(self) -> dict:
        """The error event of a client that sent nothing for ``idle_timeout_s`` (the session is then finished)."""
        return {"type": "error", "code": "idle", "message": "no audio for too long: finishing"}

    def close(self) -> None:
        """Release the session (once)."""
        session, self.session = self.session, None
        if session is not None:
            session.close()

    def _frame_error(self, message) -> dict | None:
        """The error of a message that is not an audio frame of this session (None: it is one)."""
        if isinstance(message, str):
            return {"code": "bad_message", "message": "expected binary audio or {\"type\": \"end\"}"}
        if len(message) > self.options.max_frame_bytes:
            return {"code": "frame_too_large", "message": f"frames must be at most {self.options.max_frame_bytes} bytes"}
        if len(message) % np.dtype(self._dtype).itemsize:
            return {"code": "bad_frame", "message": f"frame length {len(message)} is not a whole number of samples"}
        return None


def failure(exc: BaseException) -> tuple[dict, int]:
    """The error event and WebSocket close code of a session that failed: a ``SimulstError`` says what the client
    can fix (bad audio by default), anything else is the server's fault (``internal``)."""
    if isinstance(exc, SimulstError):
        code = exc.code or "bad_audio"
        return {"type": "error", "code": code, "message": str(exc)}, 1008 if code == "bad_audio" else 1011
    return {"type": "error", "code": "internal", "message": f"{type(exc).__name__}: {exc}"}, 1011


def _parse_start(message) -> tuple:
    if not isinstance(message, str):
        raise OptionError("the first message must be a JSON start message, not audio")
    try:
        start = json.loads(message)
    except json.JSONDecodeError as exc:
        raise OptionError(f"start message is not JSON: {exc}") from None
    if not isinstance(start, dict) or start.get("type") != "start":
        raise OptionError('the first message must be {"type": "start", ...}')
    fields = dict(start)
    fields.pop("type")
    rate = fields.pop("sample_rate", 16000)
    fmt = fields.pop("format", "pcm_s16le")
    if not isinstance(rate, int) or isinstance(rate, bool) or not RATES[0] <= rate <= RATES[1]:
        raise OptionError(f"sample_rate must be an integer from {RATES[0]} to {RATES[1]}, not {rate!r}")
    if fmt not in FORMATS:
        raise OptionError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return (rate, *FORMATS[fmt], start_spec(fields))


def _is_end(message: str) -> bool:
    try:
        return json.loads(message) == {"type": "end"}
    except json.JSONDecodeError:
        return False
