"""Evaluation on a local Ray (2 workers): the same logs as the local run, a killed worker's rows redone, a failing
row reported while the others go on."""

from __future__ import annotations

import json

import pytest

from simulst.cli import main, parser
from tests.conftest import FLEURS

COMPUTE = ("compute_ms", "elapsed", "updates_ms", "encode_ms", "delays_ca", "elapsed_ca")
"""Instance fields that hold wall-clock compute: they differ between any two runs."""


def dev_rows(tmp_path, count: int = 3, extra: str = ""):
    """The shortest X->en FLEURS rows (audio paths made absolute) in a TSV of their own."""
    lines = FLEURS.read_text().splitlines()
    rows = sorted((line.split("\t") for line in lines[1:]), key=lambda f: float(f[2]))
    picked = [f for f in rows if f[4] == "en"][:count]
    for f in picked:
        f[1] = str(FLEURS.parent / f[1])
    path = tmp_path / "rows.tsv"
    path.write_text("\n".join([lines[0], *("\t".join(f) for f in picked)]) + "\n" + extra)
    return path


def stable(output) -> list[dict]:
    instances = [json.loads(line) for line in (output / "instances.log").read_text().splitlines()]
    return [{k: v for k, v in i.items() if not any(k.startswith(c) for c in COMPUTE)} for i in instances]


@pytest.mark.model
def test_ray_eval_of_a_sweep_equals_the_local_run_and_redoes_a_killed_workers_rows(tmp_path, whisper_base):
    from simulst import flags
    from simulst.build import core_share
    from simulst.eval.data import read_tsv
    from simulst.eval.distributed import evaluate_on_ray
    from simulst.eval.plan import sweep as sweep_points

    data = dev_rows(tmp_path)
    sweep = ["--sweep", "alignatt.threshold_ms=400,800"]
    # on the threads each of the 2 actors gets: CTranslate2's float32 sums, and so a near tie, follow them
    assert main(["eval", "--data", str(data), "--output", str(tmp_path / "local"), *sweep, "--threads", str(core_share(2))]) == 0
    assert main(["eval", "--data", str(data), "--output", str(tmp_path / "ray"), *sweep, "--executor", "ray", "--workers", "2"]) == 0
    for point in ("alignatt.threshold_ms=400", "alignatt.threshold_ms=800"):
        local, distributed = stable(tmp_path / "local" / point), stable(tmp_path / "ray" / point)
        assert len(local) == 3 and distributed == local
        assert json.loads((tmp_path / "ray" / point / "scores.json").read_text())["overall"]["BLEU"] == pytest.approx(
            json.loads((tmp_path / "local" / point / "scores.json").read_text())["overall"]["BLEU"])

    # a worker killed after the first row: the row it was running goes to another worker
    ns = parser().parse_args(["eval", "--data", str(data), "--output", str(tmp_path / "killed"), *sweep])
    killed = []

    def kill_one(pool, done):
        if done == 1:
            pool.ray.kill(pool.actors[0])
            killed.append(pool)

    points = sweep_points(flags.model_spec(ns), flags.session_spec(ns), sweep[1], ns.output)
    evaluate_on_ray(points, read_tsv(data), 2, on_result=kill_one, progress=None)
    assert killed and killed[0].replaced == 1
    for point in ("alignatt.threshold_ms=400", "alignatt.threshold_ms=800"):
        assert stable(tmp_path / "killed" / point) == stable(tmp_path / "local" / point)


@pytest.mark.model
def test_ray_eval_reports_a_failing_row_and_scores_the_others(tmp_path, whisper_base, capsys):
    data = dev_rows(tmp_path, 1, extra="broken-de-en\tnowhere.flac\t1.0\tde\ten\tGuten Tag\tGood day\n")
    assert main(["eval", "--data", str(data), "--output", str(tmp_path / "out"), "--executor", "ray", "--workers", "2"]) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert list(scores["failed"]) == ["broken-de-en"] and scores["overall"]["Instances"] == 1
    assert "row broken-de-en failed" in capsys.readouterr().err
    assert len(stable(tmp_path / "out")) == 1


@pytest.fixture
def ray_front():
    """A WebSocket front with two whisper-tiny.en replicas on a local Ray (as ``serve --ray --replicas 2``)."""
    from simulst.build import ModelSpec
    from simulst.streaming.replicas import ReplicaPool
    from simulst.streaming.server import Background, Server, ServerOptions

    pool = ReplicaPool(ModelSpec("whisper", {"model": "whisper-tiny.en"}), 2, 8)
    server = Server(pool.sample_rate, pool.make_session, ServerOptions(port=0, ray=True, replicas=2), lambda: {"replicas": pool.health()}, pool.close)
    running = Background(server, timeout_s=60)
    yield running, pool
    running.stop()


def open_clients(url, count, stack):
    from websockets.sync.client import connect

    clients = [stack.enter_context(connect(url, max_size=None)) for _ in range(count)]
    for ws in clients:
        ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "pcm_s16le", "src_lang": "en", "task": "transcribe"}))
        assert json.loads(ws.recv())["type"] == "ready"
    return clients


def stream_clip(ws, audio) -> list[dict]:
    """Send a clip (fast) and its end; the events until the server closes."""
    from websockets.exceptions import ConnectionClosed

    from simulst.streaming.audio import pcm16

    events = []
    try:
        for i in range(0, len(audio), 8000):
            ws.send(pcm16(audio[i : i + 8000]))
        ws.send(json.dumps({"type": "end"}))
    except ConnectionClosed:
        pass
    try:
        while True:
            events.append(json.loads(ws.recv(timeout=120)))
    except ConnectionClosed:
        return events


def health(url) -> dict:
    import urllib.request

    with urllib.request.urlopen(url.replace("ws://", "http://") + "health", timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.model
def test_ray_serving_places_sessions_on_the_least_loaded_replica_and_survives_a_dead_one(ray_front, model_cache):
    import threading
    import time
    from contextlib import ExitStack

    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    running, pool = ray_front
    audio = load_audio(clip("en-000"))
    stack = ExitStack()
    clients = open_clients(running.url, 4, stack)
    assert [r["sessions"] for r in health(running.url)["replicas"]] == [2, 2]  # least-loaded placement
    results = [None] * 4
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, stream_clip(clients[i], audio))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    finals = [events[-1] for events in results]
    assert all(e["type"] == "final" for e in finals) and len({e["text"] for e in finals}) == 1
    assert "communication" in finals[0]["text"].lower()
    deadline = time.monotonic() + 10  # the front counts a session served once its handler has returned
    while health(running.url)["served"] < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    report = health(running.url)
    assert [(r["alive"], r["sessions"], r["served"]) for r in report["replicas"]] == [(True, 0, 2), (True, 0, 2)]
    assert report["served"] == 4 and len({r["pid"] for r in report["replicas"]}) == 2

    # one session on each replica, then replica 0 dies: its session ends with an error, the other one goes on
    doomed, survivor = open_clients(running.url, 2, stack)
    pool.ray.kill(pool.replicas[0])
    lost, kept = stream_clip(doomed, audio), stream_clip(survivor, audio)
    assert lost[-1]["type"] == "error" and lost[-1]["code"] == "replica_lost"
    assert kept[-1]["type"] == "final" and kept[-1]["text"] == finals[0]["text"]
    (again,) = open_clients(running.url, 1, stack)  # new sessions go to the replica still alive
    assert stream_clip(again, audio[: 16000 * 3])[-1]["type"] == "final"
    alive = [(r["alive"], r["served"]) for r in health(running.url)["replicas"]]
    assert alive == [(False, 3), (True, 4)]
    stack.close()
