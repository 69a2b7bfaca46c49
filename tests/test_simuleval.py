"""Interoperability with SimulEval 1.1.4: scoring its logs, and running our models inside it."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from simulst.eval.instances import read_log
from simulst.eval.scores import score
from tests.conftest import clip

ROOT = Path(__file__).resolve().parents[1]
SIMULEVAL = str(Path(sys.executable).parent / "simuleval")


def run_simuleval(tmp_path, agent_class, sources, references, *extra):
    (tmp_path / "src.txt").write_text("\n".join(map(str, sources)) + "\n")
    (tmp_path / "tgt.txt").write_text("\n".join(references) + "\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [SIMULEVAL, "--agent-class", agent_class, "--source-type", "speech", "--target-type", "text",
           "--source", str(tmp_path / "src.txt"), "--target", str(tmp_path / "tgt.txt"), "--output", str(out),
           "--source-segment-size", "1000", "--latency-metrics", "AL", "LAAL", "AP", "DAL", "ATD", *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "scores.tsv").open() as f:
        theirs = next(csv.DictReader(f, delimiter="\t"))
    return out, {k: float(v) for k, v in theirs.items()}


def test_scoring_a_log_written_by_simuleval(tmp_path):
    sources, refs = [], ["one two three four five six", "a b c"]
    for i, seconds in enumerate([4.3, 2.6]):
        path = tmp_path / f"{i}.wav"
        soundfile.write(path, 0.1 * np.sin(np.arange(int(16000 * seconds)) / 5), 16000)
        sources.append(path)
    out, theirs = run_simuleval(tmp_path, "tests.counter_agent.CounterAgent", sources, refs)
    ours = score(read_log(out / "instances.log"))["overall"]
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, abs=1e-3), name


@pytest.mark.model
def test_adapter_gives_the_same_results_as_simulst_eval(tmp_path, whisper_base, model_cache):
    from simulst import build
    from simulst.eval.data import Row
    from simulst.eval.run import evaluate
    from simulst.options import SessionOptions

    rows = [Row(c, clip(c), "de", "en", "", ref) for c, ref in [("de-004", "The height is notable."), ("de-003", "Men and women.")]]
    make_session = lambda options: build.session(whisper_base, build.policy("alignatt"), options)  # noqa: E731
    ours = evaluate(rows, whisper_base, make_session, SessionOptions(), tmp_path / "ours", progress=None)
    out, theirs = run_simuleval(
        tmp_path, "simulst.eval.simuleval_agent.SimulstAgent", [r.audio for r in rows], [r.reference for r in rows],
        "--simulst-src-lang", "de", "--simulst-policy", "alignatt",
    )
    their_log = read_log(out / "instances.log")
    our_log = read_log(tmp_path / "ours" / "instances.log")
    assert [i["prediction"] for i in their_log] == [i["prediction"] for i in our_log]
    assert [i["delays"] for i in their_log] == [i["delays"] for i in our_log]
    assert theirs["BLEU"] == pytest.approx(ours["overall"]["BLEU"], abs=1e-3)
    assert theirs["AL"] == pytest.approx(ours["overall"]["AL"], abs=1e-3)
