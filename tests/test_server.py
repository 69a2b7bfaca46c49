"""The WebSocket server on 127.0.0.1: streaming, many clients, bad input, disconnects, limits, SIGTERM-style stop."""

import json
import threading
import time
import urllib.request

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from simulst import build
from simulst.errors import OptionError
from simulst.streaming.server import Background, Server, ServerOptions
from tests.fake import FakeBackend

WORDS = [("guten", 300), ("Tag", 1300), ("liebe", 2300), ("Leute.", 2800)]
TEXT = "guten Tag liebe Leute."


def serving(backend, **options) -> Server:
    """A server of sessions over ``backend`` (a fake one, or a model the tests loaded once)."""
    return Server(backend.sample_rate, lambda spec: build.make(backend, spec), ServerOptions(port=0, **options))


class Running(Background):
    """A server with a session factory on its own thread, plus its health endpoint."""

    def __init__(self, backend, **options) -> None:
        super().__init__(serving(backend, **options), timeout_s=10)

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture
def server():
    running = Running(FakeBackend(WORDS, sample_rate=16000, batched=True))
    yield running
    running.stop()


def start(ws, **fields):
    ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "pcm_s16le", "src_lang": "de", "tgt_lang": "en", **fields}))
    return json.loads(ws.recv())


def audio_frames(seconds: float, frame_s: float = 0.25, rate: int = 16000, dtype=np.int16):
    total = np.zeros(int(seconds * rate), dtype)
    step = int(frame_s * rate)
    return [total[i : i + step].tobytes() for i in range(0, len(total), step)]


def receive_all(ws) -> list[dict]:
    events = []
    try:
        while True:
            events.append(json.loads(ws.recv(timeout=30)))
    except ConnectionClosed:
        return events


def stream(url, seconds=3.0, **fields) -> list[dict]:
    with connect(url) as ws:
        assert start(ws, **fields)["type"] == "ready"
        for frame in audio_frames(seconds):
            ws.send(frame)
        ws.send(json.dumps({"type": "end"}))
        return receive_all(ws)


def test_stream_gets_commits_then_final(server):
    events = stream(server.url)
    commits = [e for e in events if e["type"] == "commit"]
    assert [(e["text"], e["source_ms"]) for e in commits] == [(" guten", 1000), (" Tag", 2000), (" liebe", 3000), (" Leute.", 3000)]
    assert events[-1]["type"] == "final" and events[-1]["text"] == TEXT
    assert all({"source_ms", "compute_ms", "elapsed_ms", "wall_ms"} <= set(e) for e in commits)


def test_eight_clients_at_once(server):
    results = [None] * 8

    def client(i):
        results[i] = stream(server.url, policy="waitk", k=1, stride_ms=1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for events in results:
        commits = [e for e in events if e["type"] == "commit"]
        assert [e["source_ms"] for e in commits] == sorted(e["source_ms"] for e in commits)
        assert "".join(e["text"] for e in commits).strip() == TEXT == events[-1]["text"]
    assert server.health()["served"] == 8


def test_sessions_join_and_leave_while_others_stream(server):
    """With batching (the default): one client streams, a second joins mid-stream, a third leaves mid-stream."""
    results = {}

    def client(name, delay_s, leave=False):
        time.sleep(delay_s)
        with connect(server.url) as ws:
            assert start(ws, policy="waitk", k=1, stride_ms=1000)["type"] == "ready"
            for i, frame in enumerate(audio_frames(3.0, frame_s=0.1)):
                ws.send(frame)
                time.sleep(0.02)
                if leave and i == 12:
                    return  # gone without an end message
            ws.send(json.dumps({"type": "end"}))
            results[name] = receive_all(ws)

    threads = [threading.Thread(target=client, args=args) for args in (("first", 0.0), ("joins", 0.3), ("leaves", 0.1, True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for name in ("first", "joins"):
        assert results[name][-1] == {**results[name][-1], "type": "final", "text": TEXT}
        assert "".join(e["text"] for e in results[name] if e["type"] == "commit").strip() == TEXT
    deadline = time.monotonic() + 10
    while server.health()["sessions"] and time.monotonic() < deadline:
        time.sleep(0.1)
    health = server.health()
    assert (health["status"], health["sessions"], health["served"]) == ("ok", 0, 3)
    calls = health["batches"]["propose_all"]
    assert calls["calls"] >= calls["passes"] > 0


@pytest.mark.parametrize("batching", [True, False])
def test_sessions_spread_over_model_threads(batching):
    """--model-threads 2: four clients go two to each model thread (the health report shows it while they are
    open), stream at once and each gets its text alone; a Ray front or no model thread is refused."""
    running = Running(FakeBackend(WORDS, sample_rate=16000, batched=True), model_threads=2, batching=batching)
    try:
        clients = [connect(running.url) for _ in range(4)]
        for ws in clients:
            assert start(ws, policy="waitk", k=1, stride_ms=1000)["type"] == "ready"
        assert running.health()["model_threads"] == [2, 2]
        for frame in audio_frames(3.0):
            for ws in clients:
                ws.send(frame)
        for ws in clients:
            ws.send(json.dumps({"type": "end"}))
        for ws in clients:
            events = receive_all(ws)
            assert events[-1]["type"] == "final" and events[-1]["text"] == TEXT
            assert "".join(e["text"] for e in events if e["type"] == "commit").strip() == TEXT
    finally:
        running.stop()
    for wrong, message in ((dict(model_threads=0), "at least 1"), (dict(model_threads=2, ray=True), "--replicas")):
        with pytest.raises(OptionError, match=message):
            ServerOptions(**wrong)


class SlowBackend(FakeBackend):
    """The first round takes 2.5 s: a client that streams in real time falls behind."""

    def open(self, options):
        stream = super().open(options)
        begin = stream.begin

        def slow(*args):
            time.sleep(2.5 if len(self.begun) == 0 else 0.0)
            return begin(*args)

        stream.begin = slow
        return stream


@pytest.mark.parametrize("catch_up_s", [0.0, 1.0])
def test_a_late_session_catches_up_in_one_round(catch_up_s):
    """5 s streamed in real time, 0.5 s frames, to a server whose first round takes 2.5 s: under --catch-up-s
    the audio that waited for it gets one round (not one per 1 s chunk); without, every chunk gets its round.
    A client that sends faster than real time is never behind: it gets every round (the other tests)."""
    backend = SlowBackend(WORDS, sample_rate=16000)
    running = Running(backend, catch_up_s=catch_up_s)
    try:
        with connect(running.url) as ws:
            assert start(ws, policy="waitk", k=1, stride_ms=1000)["type"] == "ready"
            began = time.monotonic()
            for i, frame in enumerate(audio_frames(5.0, frame_s=0.5)):
                time.sleep(max(0.0, began + 0.5 * (i + 1) - time.monotonic()))
                ws.send(frame)
            ws.send(json.dumps({"type": "end"}))
            events = receive_all(ws)
    finally:
        running.stop()
    assert events[-1]["type"] == "final" and events[-1]["text"] == TEXT
    assert "".join(e["text"] for e in events if e["type"] == "commit").strip() == TEXT
    rounds = [samples for samples, _, _ in backend.begun]
    assert rounds[0] == 16000 and rounds[-1] == 80000 and all(r % 16000 == 0 for r in rounds)
    if catch_up_s:
        assert max(b - a for a, b in zip(rounds, rounds[1:])) >= 2 * 16000 and len(rounds) < 6
    else:
        assert rounds == [16000 * (i + 1) for i in range(5)] + [80000]


def test_garbage_gets_errors_and_the_session_goes_on(server):
    with connect(server.url, max_size=None) as ws:
        assert start(ws)["type"] == "ready"
        ws.send("this is not audio")
        assert json.loads(ws.recv())["code"] == "bad_message"
        ws.send(b"\x00\x01\x02")
        assert json.loads(ws.recv())["code"] == "bad_frame"
        ws.send(bytes(10 * 1024 * 1024))
        assert json.loads(ws.recv())["code"] == "frame_too_large"
        for frame in audio_frames(3.0):
            ws.send(frame)
        ws.send(json.dumps({"type": "end"}))
        final = receive_all(ws)[-1]
        assert final["type"] == "final" and final["text"] == TEXT
    assert server.health()["status"] == "ok"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"format": "mp3"}, "format must be one of"),
        ({"sample_rate": 7}, "sample_rate must be"),
        ({"colour": "blue"}, "unknown start field"),
        ({"policy": "nope"}, "unknown policy 'nope'"),
        ({"chunk_ms": "soon"}, "chunk_ms must be int"),
        ({"tgt_lang": "fr", "src_lang": None}, "source language"),
    ],
)
def test_bad_start_is_refused(server, fields, message):
    with connect(server.url) as ws:
        error = start(ws, **fields)
        assert error["type"] == "error" and error["code"] == "bad_start" and message in error["message"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert server.health()["status"] == "ok"


def test_audio_before_start_is_refused(server):
    with connect(server.url) as ws:
        ws.send(bytes(3200))
        error = json.loads(ws.recv())
        assert error["code"] == "bad_start" and "JSON start" in error["message"]


def test_disconnect_mid_stream_frees_the_session(server):
    ws = connect(server.url)
    start(ws)
    for frame in audio_frames(1.0):
        ws.send(frame)
    assert server.health()["sessions"] == 1
    ws.close()
    deadline = time.time() + 10
    while server.health()["sessions"] and time.time() < deadline:
        time.sleep(0.05)
    assert server.health()["sessions"] == 0
    assert stream(server.url)[-1]["text"] == TEXT  # the server still serves


def test_busy_server_refuses_extra_sessions():
    running = Running(FakeBackend(WORDS, sample_rate=16000), max_sessions=1)
    try:
        with connect(running.url) as first:
            start(first)
            with connect(running.url) as second:
                assert json.loads(second.recv())["code"] == "busy"
    finally:
        running.stop()


def test_bearer_token():
    running = Running(FakeBackend(WORDS, sample_rate=16000), token="s3cret")
    try:
        with pytest.raises(InvalidStatus):
            connect(running.url)
        with connect(running.url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            assert start(ws)["type"] == "ready"
    finally:
        running.stop()


def test_float_audio_at_another_rate(server):
    with connect(server.url) as ws:
        assert start(ws, sample_rate=48000, format="f32le")["type"] == "ready"
        for frame in audio_frames(3.0, rate=48000, dtype=np.float32):
            ws.send(frame)
        ws.send(json.dumps({"type": "end"}))
        assert receive_all(ws)[-1]["text"] == TEXT


def test_stop_finishes_open_sessions():
    running = Running(FakeBackend(WORDS, sample_rate=16000))
    with connect(running.url) as ws:
        start(ws)
        for frame in audio_frames(3.0):
            ws.send(frame)
        time.sleep(0.5)
        running.loop.call_soon_threadsafe(running.server.stopping.set)  # as SIGTERM does
        ws.send(json.dumps({"type": "end"}))
        assert receive_all(ws)[-1]["text"] == TEXT
    running.thread.join(10)
    assert not running.thread.is_alive()


@pytest.mark.model
def test_real_model_over_the_wire(whisper_base):
    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    running = Running(whisper_base)
    try:
        audio = (load_audio(clip("de-000")) * 32767).astype(np.int16)
        with connect(running.url) as ws:
            assert start(ws)["type"] == "ready"
            for i in range(0, len(audio), 8000):
                ws.send(audio[i : i + 8000].tobytes())
            ws.send(json.dumps({"type": "end"}))
            events = receive_all(ws)
        assert "Hong Kong" in events[-1]["text"]
        assert sum(e["type"] == "commit" and e["source_ms"] < 17000 for e in events) >= 3
    finally:
        running.stop()


def test_bench_replays_in_real_time(server):
    from simulst.streaming.bench import alone, bench
    from simulst.streaming.soak import rss_mb

    start = {"type": "start", "sample_rate": 16000, "format": "pcm_s16le", "src_lang": "de", "policy": "waitk", "k": 1, "stride_ms": 1000}
    audio = np.zeros(16000 * 3, np.float32)
    solo = [alone(server.server, audio, start)]
    assert solo == [TEXT]
    result = bench(server.url, [audio], 2, start, solo, memory=rss_mb)
    assert result["finals"] == [TEXT, TEXT] and result["differ"] == 0 and result["differ_wer"] == 0.0
    assert result["dropped"] == result["reordered"] == 0 and not result["errors"]
    assert 0 <= result["lag_p50_s"] <= result["lag_p95_s"] < 1.5 and result["real_time"]
    assert len(result["rss_mb"]) >= 3 and all(mb > 0 for _, mb in result["rss_mb"])


def test_the_reference_alone_hears_what_a_bench_client_sends(server, monkeypatch):
    """16-bit samples, not the file's floats: a model that reads the low bits (the NAR head does) gives a client's
    output alone only from the same samples."""
    from simulst.streaming.audio import pcm16
    from simulst.streaming.bench import alone
    from simulst.streaming.protocol import Connection

    heard, feed = [], Connection.feed
    monkeypatch.setattr(Connection, "feed", lambda self, batch: heard.extend(batch.frames) or feed(self, batch))
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    alone(server.server, audio, {"type": "start", "src_lang": "de", "policy": "waitk"})
    assert np.array_equal(np.concatenate(heard), np.frombuffer(pcm16(audio), np.int16).astype(np.float32) / 32768)


def test_bench_counts_lost_and_reordered_commits():
    from simulst.streaming.bench import ClientResult

    fine = ClientResult(commits=[" a", " b"], sources_ms=[1000, 2000], final="a b")
    assert not fine.dropped and fine.reordered == 0
    assert ClientResult(commits=[" a"], sources_ms=[1000], final="a b").dropped
    assert ClientResult(commits=[" a", " b"], sources_ms=[1000, 2000]).dropped  # no final
    assert ClientResult(commits=[" a", " b", " c"], sources_ms=[2000, 1000, 3000], final="a b c").reordered == 1


def test_bench_row_says_how_much_finals_differ_from_alone():
    from simulst.streaming.bench import row

    report = dict(clients=2, lag_p50_s=0.5, lag_p95_s=1.0, worst_client_lag_p95_s=1.1, end_delay_median_s=0.4,
                  end_delay_max_s=0.6, dropped=0, reordered=0, differ=1, differ_wer=12.5, rss_mb=[(0, 10.0), (1, 12.0)],
                  real_time=True)
    assert row(report, "on").split("\t")[9:] == ["1/2 (12.5% words)", "10/12/12", "yes"]


def test_speech_audio_follows_each_speech_event(server):
    with connect(server.url) as ws:
        assert start(ws, speech=True, min_words=2)["type"] == "ready"
        for frame in audio_frames(3.0):
            ws.send(frame)
        ws.send(json.dumps({"type": "end"}))
        messages = []
        try:
            while True:
                messages.append(ws.recv(timeout=30))
        except ConnectionClosed:
            pass
    events = [json.loads(m) if isinstance(m, str) else m for m in messages]
    speech = [(e, events[i + 1]) for i, e in enumerate(events) if isinstance(e, dict) and e["type"] == "speech"]
    assert len(speech) == 2 and all(isinstance(pcm, bytes) for _, pcm in speech)
    assert " ".join(e["text"] for e, _ in speech) == TEXT
    assert sum(isinstance(e, bytes) for e in events) == len(speech)  # no other binary messages
    end = 0.0
    for e, pcm in speech:
        samples = np.frombuffer(pcm, "<i2")
        assert abs(len(samples) * 1000 / e["sample_rate"] - e["duration_ms"]) < 1
        assert np.abs(samples).max() > 1000  # audible
        assert e["start_ms"] >= max(e["source_ms"], end) - 1e-6  # not before its text, no overlap
        end = e["start_ms"] + e["duration_ms"]
    assert events[-1]["type"] == "final"


@pytest.mark.parametrize("fields", [{"min_words": 2}, {"speech": "yes"}, {"speech": True, "min_words": "two"}])
def test_bad_speech_fields_are_refused(server, fields):
    with connect(server.url) as ws:
        reply = start(ws, **fields)
        assert reply["type"] == "error" and reply["code"] == "bad_start"
    assert stream(server.url)[-1]["text"] == TEXT
