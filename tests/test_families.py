"""Model families beside Whisper (SeamlessM4T v2, Speech2Text) through the same seams, on tiny random-weight models
that the tests build and save as a user's model directory: loaded by ``--model DIR`` as a user would."""

import json

import pytest

from simulst import build
from simulst.build import ModelSpec, SessionSpec
from simulst.errors import OptionError
from simulst.options import SessionOptions
from simulst.streaming.audio import load_audio
from tests import tiny_models
from tests.conftest import clip

FAMILIES = {"s2t": (tiny_models.speech2text, "Speech2TextBackend", {}), "seamless": (tiny_models.seamless, "SeamlessBackend", {"tgt_lang": "deu"})}
UNGUARDED = dict(loop_times=1000, repeat_tokens=1000, echo_tokens=1000, max_compression=1000, rate_headroom=1000)
"""A random model repeats itself: no guard may stop it where transformers' generate goes on."""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    return {name: str(make(folder)) for name, (make, _, _) in FAMILIES.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_whole_clip_gives_transformers_greedy_generate_token_for_token(models, family):
    backend = build.model(ModelSpec("whisper", {"model": models[family]}))  # routed by the directory's architecture
    assert type(backend).__name__ == FAMILIES[family][1]
    audio = load_audio(clip("en-000"))
    options = SessionOptions(src_lang="en", tgt_lang="de", max_tokens=30, max_buffer_ms=29000, **UNGUARDED)
    session = build.session(backend, build.policy("offline"), options)
    session.feed_audio(audio)
    session.feed_eof()
    final = list(session.events())[-1]
    features = backend.features(audio, sampling_rate=16000, return_tensors="pt")["input_features"]
    generated = backend.model.generate(input_features=features, max_new_tokens=30, num_beams=1, do_sample=False, **FAMILIES[family][2])
    prompt = len(backend.prompt(options))
    assert session.tokens == generated[0, prompt:].tolist() and len(session.tokens) == 30
    assert final.type == "final" and final.text == session.stream.detokenize(session.tokens).strip()


@pytest.mark.parametrize("policy", ["waitk", "alignatt", "edatt", "local-agreement", "retranslate", "offline"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_training_free_policy_streams_a_clip(models, family, policy):
    backend = build.model(ModelSpec("whisper", {"model": models[family]}))
    session = build.make(backend, SessionSpec(SessionOptions(src_lang="en", tgt_lang="de", max_tokens=8), policy))
    audio = load_audio(clip("en-002"))
    events = []
    for start in range(0, len(audio), 16000):
        session.feed_audio(audio[start : start + 16000])
        events += session.events()
    session.feed_eof()
    events += session.events()
    assert events[-1].type == "final" and session.decoder_steps > 0
    assert [e.source_ms for e in events if e.type == "commit"] == sorted(e.source_ms for e in events if e.type == "commit")


def test_seamless_writes_its_languages_and_refuses_others(models):
    backend = build.model(ModelSpec("seamless", {"model": models["seamless"]}))
    assert backend.prompt(SessionOptions(src_lang="de", tgt_lang="fr"))[-1] == backend.languages["fra"]
    assert backend.prompt(SessionOptions(src_lang="de", task="transcribe"))[-1] == backend.languages["deu"]
    assert backend.translates(SessionOptions(tgt_lang="de")) and not backend.translates(SessionOptions(tgt_lang="ja"))
    with pytest.raises(OptionError, match="cannot write 'jpn'"):
        backend.open(SessionOptions(src_lang="en", tgt_lang="ja"))
    assert backend.frame_ms == 160 and backend.heads == [(0, 0), (0, 1)]  # layer 1 of 2 (two thirds deep), every head


def test_a_learned_head_refuses_another_family(models):
    backend = build.model(ModelSpec("s2t", {"model": models["s2t"]}))
    with pytest.raises(OptionError, match="was trained for model"):
        build.make(backend, SessionSpec(SessionOptions(src_lang="en", tgt_lang="de"), "reina"))


def test_translate_eval_and_serve_take_a_model_directory(models, tmp_path, capsys):
    from simulst.cli import main
    from simulst.streaming.protocol import Connection, ServerOptions
    from simulst.streaming.server import model_server

    path = models["seamless"]
    assert main(["translate", str(clip("en-003")), "--model", path, "--src-lang", "en", "--tgt-lang", "fr", "--format", "jsonl", "--max-tokens", "6"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["type"] == "final"
    data = tmp_path / "rows.tsv"
    data.write_text("id\taudio\tduration\tsrc_lang\ttgt_lang\tsource\treference\n"
                    f"a\t{clip('en-003')}\t2.6\ten\tde\tx\tein Test\n")
    assert main(["eval", "--data", str(data), "--output", str(tmp_path / "out"), "--model", path, "--max-tokens", "6"]) == 0
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["overall"]["Instances"] == 1
    server = model_server(ModelSpec("whisper", {"model": path}), ServerOptions(port=0))
    connection = Connection(server.options, server.make_session, server.sample_rate)
    connection.start(json.dumps({"type": "start", "src_lang": "en", "tgt_lang": "de", "max_tokens": 6}))
    finals = [e for e in connection.finish() if e.type == "final"]
    server.close()
    assert len(finals) == 1


def test_an_unsupported_architecture_is_a_clear_error(tmp_path, capsys):
    from simulst.cli import main

    path = tiny_models.foreign(tmp_path)
    assert main(["translate", str(clip("en-003")), "--model", str(path)]) == 2
    assert "holds a 'bert' model, which simulst cannot run" in capsys.readouterr().err


def test_the_simuleval_agent_runs_a_family_model(models, tmp_path):
    """Inside SimulEval 1.1.4 (--simulst-model DIR routes as --model does), with the text of simulst eval."""
    from simulst.eval.data import Row
    from simulst.eval.instances import read_log
    from simulst.eval.run import evaluate
    from tests.test_simuleval import run_simuleval

    backend = build.model(ModelSpec("whisper", {"model": models["s2t"]}))
    rows = [Row("a", clip("en-003"), "en", "de", "", "ein Test")]
    options = SessionOptions(max_tokens=6)
    evaluate(rows, backend, build.factory(backend, SessionSpec(options, "waitk")), options, tmp_path / "ours", progress=None)
    out, _ = run_simuleval(tmp_path, "simulst.eval.simuleval_agent.SimulstAgent", [rows[0].audio], [rows[0].reference],
                           "--simulst-model", models["s2t"], "--simulst-src-lang", "en", "--simulst-tgt-lang", "de",
                           "--simulst-policy", "waitk", "--simulst-max-tokens", "6")
    # the random model's commits end inside its word-less pieces, which SimulEval's writes (joined by spaces) cut
    # into words: the same text but for those spaces (docs/evaluation.md)
    theirs, ours = (["".join(i["prediction"].split()) for i in read_log(path)] for path in (out / "instances.log", tmp_path / "ours" / "instances.log"))
    assert theirs == ours and ours[0]
