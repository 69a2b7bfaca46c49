"""Serving on Ray (``simulst serve --ray --replicas N``): the WebSocket front of streaming/server.py, with each
session living on one of N Ray actors (replicas) that each hold the model.

The front parses start messages, moves audio and events, and places each new session on the replica with the
fewest open sessions; the session stays there for its whole life. A replica runs the calls of its sessions on
threads of its own and, with batching, gathers their model calls into shared passes as the plain server does.
A replica that dies ends its sessions with an ``error`` event (``replica_lost``); the other replicas' sessions
go on, and new sessions go to the replicas still alive. ``/health`` lists every replica.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from typing import Iterator

from simulst.errors import SimulstError
from simulst.session import SessionLike


class ReplicaLost(SimulstError):
    code = "replica_lost"


class Replica:
    """A Ray actor's body: the model, and the sessions placed on it by key."""

    def __init__(self, model, batching: bool, threads: int) -> None:
        from simulst import build
        from simulst.models.batching import Batcher

        self.backend = build.model(build.share(model, threads, build.SERVED_ENCODER_WORKERS))
        self.batcher = Batcher() if batching else None
        self.sessions: dict[int, SessionLike] = {}

    def ping(self) -> dict:
        return {"pid": os.getpid(), "sessions": len(self.sessions), "sample_rate": self.backend.sample_rate}

    def open(self, key: int, spec) -> None:
        from simulst import build

        self.sessions[key] = build.make(self.backend, spec)

    def feed(self, key: int, samples, catch_up: bool = False) -> tuple[list, tuple]:
        return self._run(key, lambda s: s.feed_audio(samples, catch_up))

    def finish(self, key: int) -> tuple[list, tuple]:
        return self._run(key, lambda s: s.feed_eof())

    def close(self, key: int) -> None:
        self.sessions.pop(key, None)

    def _run(self, key: int, step) -> tuple[list, tuple]:
        """The session's events after ``step``, and its figures (``SessionLike``'s, as ``RemoteSession`` takes them)."""
        session = self.sessions[key]
        if self.batcher is None:
            step(session)
        else:
            with self.batcher.serving():
                step(session)
        figures = (session.finished, session.compute_s, session.updates_ms, session.decoder_steps, session.encode_ms, session.buffered_ms)
        return list(session.events()), figures


class ReplicaPool:
    """The front's view of the replicas: placement, load, liveness. Its ``make_session`` is the server's session
    factory; ``sample_rate`` stands in for the backend's."""

    def __init__(self, model, replicas: int, max_sessions: int, batching: bool = True, address: str | None = None) -> None:
        from simulst.ray_runtime import join

        ray, self.started_ray, threads = join(replicas, address, "--ray", "replicas")
        self.ray = ray
        actor = ray.remote(num_cpus=1, max_concurrency=max_sessions + 4)(Replica)
        self.replicas = [actor.remote(model, batching, threads) for _ in range(replicas)]
        self.sample_rate = ray.get([r.ping.remote() for r in self.replicas])[0]["sample_rate"]  # every replica has loaded its model
        self.load = [0] * replicas  # open sessions
        self.served = [0] * replicas  # sessions placed since the start
        self.alive = [True] * replicas
        self._keys = itertools.count()
        self._lock = threading.Lock()

    def make_session(self, spec) -> "RemoteSession":
        with self._lock:
            alive = [i for i in range(len(self.replicas)) if self.alive[i]]
            if not alive:
                raise ReplicaLost("no replica is running")
            index = min(alive, key=lambda i: self.load[i])
            self.load[index] += 1
            self.served[index] += 1
        session = RemoteSession(self, index, next(self._keys))
        try:
            session.call("open", spec)
        except BaseException:
            session.close()
            raise
        return session

    def health(self) -> list[dict]:
        """Every replica: alive or not, its open and placed sessions, its process (asked with a 2 s timeout)."""
        report = []
        for i, replica in enumerate(self.replicas):
            entry = {"replica": i, "alive": self.alive[i], "sessions": self.load[i], "served": self.served[i]}
            if self.alive[i]:
                try:
                    entry.update(self.ray.get(replica.ping.remote(), timeout=2.0))
                except (self.ray.exceptions.RayActorError, self.ray.exceptions.GetTimeoutError) as exc:
                    entry.update(alive=isinstance(exc, self.ray.exceptions.GetTimeoutError), error=type(exc).__name__)
                    self.alive[i] = entry["alive"]
            report.append(entry)
        return report

    def close(self) -> None:
        for replica in self.replicas:
            self.ray.kill(replica)
        if self.started_ray:
            self.ray.shutdown()


class RemoteSession:
    """A session on a replica (``SessionLike``): its calls go to the replica, its figures come back with each."""

    def __init__(self, pool: ReplicaPool, index: int, key: int) -> None:
        self.pool, self.index, self.key = pool, index, key
        self._events: deque = deque()
        self._closed = False
        self.finished = False
        self.compute_s, self.updates_ms, self.decoder_steps, self.encode_ms, self.buffered_ms = 0.0, [], 0, 0.0, 0.0

    def call(self, method: str, *args):
        ray = self.pool.ray
        try:
            return ray.get(getattr(self.pool.replicas[self.index], method).remote(self.key, *args))
        except ray.exceptions.RayActorError as exc:
            self.pool.alive[self.index] = False
            raise ReplicaLost(f"replica {self.index} stopped: {type(exc).__name__}") from None
        except ray.exceptions.RayTaskError as exc:  # the session's own error, raised on the replica
            raise exc.cause from None

    def feed_audio(self, samples, catch_up: bool = False) -> None:
        self._take(*self.call("feed", samples, catch_up))

    def feed_eof(self) -> None:
        self._take(*self.call("finish"))

    def _take(self, events: list, figures: tuple) -> None:
        self._events.extend(events)
        self.finished, self.compute_s, self.updates_ms, self.decoder_steps, self.encode_ms, self.buffered_ms = figures

    def events(self) -> Iterator:
        while self._events:
            yield self._events.popleft()

    def close(self) -> None:
        """Release the session's place on its replica (once)."""
        if self._closed:
            return
        self._closed = True
        with self.pool._lock:
            self.pool.load[self.index] -= 1
        if self.pool.alive[self.index]:
            self.pool.replicas[self.index].close.remote(self.key)
