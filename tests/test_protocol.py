"""The session protocol without sockets (streaming/protocol.py), and every bad start option against a real server."""

import json

import numpy as np
import pytest

from simulst import build, registry
from simulst.build import SessionSpec
from simulst.options import SessionOptions
from simulst.streaming.protocol import Connection, ProtocolError, ServerOptions, start_message, start_spec
from tests.fake import FakeBackend
from tests.test_server import TEXT, WORDS, Running, audio_frames, start, stream


def connection(options: ServerOptions = ServerOptions(), clock=None, backend=None) -> Connection:
    backend = backend or FakeBackend(WORDS, sample_rate=16000)
    make = lambda spec: build.make(backend, spec)  # noqa: E731
    return Connection(options, make, backend.sample_rate, clock) if clock else Connection(options, make, backend.sample_rate)


def begin(conn: Connection, **fields) -> dict:
    return conn.start(json.dumps({"type": "start", "sample_rate": 16000, "src_lang": "de", **fields}))


def test_a_session_message_by_message():
    conn = connection()
    assert begin(conn, policy="waitk", k=1, stride_ms=1000) == {"type": "ready", "sample_rate": 16000}
    events = []
    for frame in audio_frames(3.0):
        batch = conn.receive([frame])
        assert not batch.replies and not batch.ended and len(batch.frames) == 1
        events += conn.feed(batch)
    assert conn.receive(['{"type": "end"}']).ended
    events += conn.finish()
    assert [e.text for e in events if e.type == "commit"] == [" guten", " Tag", " liebe", " Leute."]
    assert events[-1].type == "final" and events[-1].text == TEXT


def test_frames_are_checked_one_by_one_and_the_good_ones_kept():
    conn = connection(ServerOptions(max_frame_bytes=1000))
    begin(conn)
    good = np.zeros(100, np.int16).tobytes()
    batch = conn.receive(["hello", b"\x00\x01\x02", bytes(2000), good, None])
    assert [r["code"] for r in batch.replies] == ["bad_message", "bad_frame", "frame_too_large"]
    assert len(batch.frames) == 1 and batch.left


def test_the_session_length_limit_ends_the_session():
    conn = connection(ServerOptions(max_session_s=1))
    begin(conn)
    batch = conn.receive(audio_frames(2.0, frame_s=0.5))
    assert batch.ended and [r["code"] for r in batch.replies] == ["too_long"] and len(batch.frames) == 2


def test_a_session_behind_real_time_catches_up_once_enough_audio_waits():
    now = [0.0]
    conn = connection(ServerOptions(catch_up_s=1.0), clock=lambda: now[0])
    begin(conn)
    now[0] = 3.0  # 3 s after ready, nothing fed yet: 3 s behind
    assert conn.receive(audio_frames(0.5)).catch_up is False  # but only 0.5 s waits
    assert conn.receive(audio_frames(1.5)).catch_up is True  # 1.5 s waits, 2.5 s behind
    assert conn.receive(audio_frames(1.5)).catch_up is False  # now ahead of the clock: 3.5 s fed at 3 s


def test_start_fields_make_the_session_spec_and_back():
    spec = start_spec({"src_lang": "de", "chunk_ms": 500, "policy": "waitk", "k": 2, "text_k": 3, "speech": True, "min_words": 2})
    assert spec.options == SessionOptions(src_lang="de", chunk_ms=500) and spec.policy == "waitk" and spec.policy_options.k == 2
    assert spec.cascade.text_k == 3 and spec.speech.min_words == 2
    message = start_message(spec)
    assert message["type"] == "start" and message["speech"] is True
    assert start_spec({k: v for k, v in message.items() if k not in ("type", "sample_rate", "format")}) == spec
    assert start_spec({}) == SessionSpec()


def bad_start_values():
    """``(field, value)`` out of range for every option a start message may carry, each policy's included."""
    from tests.test_options import every_bad_value

    session_classes = {"SessionOptions", "CascadeOptions", "SpeechOptions"}
    policies = {registry.policies.get(n).Options: n for n in registry.policies.names()}
    for cls, name, value in every_bad_value():
        if cls in policies:
            yield {"policy": policies[cls], name: value}
        elif cls.__name__ in session_classes:
            yield {name: value, **({"speech": True} if cls.__name__ == "SpeechOptions" else {})}


BAD_STARTS = list(bad_start_values())


def test_every_out_of_range_option_is_refused_before_a_session_starts():
    for fields in BAD_STARTS:
        with pytest.raises(ProtocolError) as caught:
            begin(connection(), **fields)
        assert caught.value.code == "bad_start"
    assert len(BAD_STARTS) >= 25 and {f.get("policy") for f in BAD_STARTS} >= {"waitk", "alignatt", "edatt", "local-agreement", "retranslate", "reina", "dar"}


def test_the_server_answers_every_bad_start_with_an_error_and_stays_up():
    from websockets.sync.client import connect

    running = Running(FakeBackend(WORDS, sample_rate=16000))
    try:
        for fields in BAD_STARTS:
            with connect(running.url) as ws:
                reply = start(ws, **fields)
                assert (reply["type"], reply["code"]) == ("error", "bad_start"), (fields, reply)
        assert running.health()["status"] == "ok"
        assert stream(running.url)[-1]["text"] == TEXT
    finally:
        running.stop()


def test_a_start_that_fails_inside_the_server_is_answered_and_the_server_goes_on():
    from websockets.sync.client import connect

    from simulst.streaming.server import Background, Server

    def broken(spec):
        raise RuntimeError("no model here")

    running = Background(Server(16000, broken, ServerOptions(port=0)), timeout_s=10)
    try:
        for _ in range(2):
            with connect(running.url) as ws:
                reply = start(ws)
                assert (reply["type"], reply["code"]) == ("error", "internal") and "no model here" in reply["message"]
    finally:
        running.stop()
