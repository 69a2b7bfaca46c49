"""Options dataclasses: generated CLI flags, validated mappings, registries."""

import argparse

import pytest

from simulst import registry
from simulst.errors import OptionError
from simulst.options import SessionOptions, add_options, from_mapping, from_namespace
from simulst.policies import AlignAtt, AlignAttOptions, WaitK, WaitKOptions


def test_flags_are_generated_from_fields():
    parser = argparse.ArgumentParser()
    add_options(parser, SessionOptions)
    add_options(parser, WaitKOptions, prefix="waitk")
    ns = parser.parse_args(["--src-lang", "de", "--chunk-ms", "500", "--partials", "--waitk-k", "5"])
    assert from_namespace(SessionOptions, ns) == SessionOptions(src_lang="de", chunk_ms=500, partials=True)
    assert from_namespace(WaitKOptions, ns, prefix="waitk") == WaitKOptions(k=5)
    with pytest.raises(SystemExit):
        parser.parse_args(["--task", "summarize"])


def test_optional_language_accepts_auto():
    parser = argparse.ArgumentParser()
    add_options(parser, SessionOptions)
    assert parser.parse_args(["--src-lang", "auto"]).src_lang is None


def test_mapping_is_validated():
    assert from_mapping(SessionOptions, {"chunk_ms": "700", "partials": "true"}) == SessionOptions(chunk_ms=700, partials=True)
    with pytest.raises(OptionError, match="unknown .* option.*chunk_size"):
        from_mapping(SessionOptions, {"chunk_size": 3})
    with pytest.raises(OptionError, match="task must be one of"):
        from_mapping(SessionOptions, {"task": "summarize"})
    with pytest.raises(OptionError, match="chunk_ms must be int"):
        from_mapping(SessionOptions, {"chunk_ms": "fast"})
    with pytest.raises(OptionError, match="must be an integer"):
        from_mapping(SessionOptions, {"chunk_ms": 2.5})
    with pytest.raises(OptionError, match="true or false"):
        from_mapping(SessionOptions, {"partials": "maybe"})


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        SessionOptions().chunk_ms = 5


def test_policies_come_from_entry_points():
    assert {"waitk", "alignatt"} <= set(registry.policies.names())
    assert registry.policies.get("waitk") is WaitK
    assert registry.policies.get("alignatt") is AlignAtt
    with pytest.raises(OptionError, match="unknown policy 'wait-forever'; available: .*alignatt"):
        registry.policies.get("wait-forever")


def test_build_policy_validates_its_options():
    from simulst import build

    assert build.policy("alignatt", {"threshold_ms": 300}).options == AlignAttOptions(threshold_ms=300)
    with pytest.raises(OptionError, match="unknown alignatt policy option"):
        build.policy("alignatt", {"k": 4})


def test_a_share_of_the_cores_fills_each_backends_unset_threads():
    from simulst.options import share_cores

    options = {"backend": "whisper", "threads": 0, "nar.threads": 0, "decoder_threads": 1, "encoder_workers": 1, "chunk_ms": 1000}
    assert vars(share_cores(options, 1)) == {**options, "threads": 1, "nar.threads": 1}
    assert vars(share_cores({**options, "threads": 3}, 1))["threads"] == 3  # --threads given: kept
    assert vars(share_cores(options, 0)) == options  # a cluster: each backend's own default
    assert vars(share_cores(options, 1, workers=2))["encoder_workers"] == 2  # a server's model threads
    assert vars(share_cores({**options, "encoder_workers": 3}, 1, workers=2))["encoder_workers"] == 3  # given: kept


def test_a_served_backend_gets_two_encoder_workers_or_one_per_model_thread(monkeypatch):
    """A server's sessions encode beside each other (CTranslate2's passes run aside of the batches); a lone
    session (translate, eval, mic) keeps the one worker it runs fastest on."""
    import simulst.cli as cli

    built = []
    monkeypatch.setattr(cli, "_backend", lambda ns: built.append(ns) or ns)
    ns = cli.parser().parse_args(["serve"])
    assert ns.encoder_workers == 1
    for model_threads, workers in ((1, 2), (2, 2), (3, 3)):
        assert cli._served_backend(ns, model_threads).encoder_workers == workers
    assert len(built) == 3
