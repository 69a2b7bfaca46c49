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


def test_a_share_of_the_cores_fills_the_backends_unset_threads():
    from simulst import build
    from simulst.build import ModelSpec

    model = ModelSpec("whisper")
    assert build.share(model, 1).options.threads == 1 and build.share(model, 1).options.decoder_threads == 1
    assert build.share(ModelSpec("whisper", {"threads": 3}), 1).options.threads == 3  # --threads given: kept
    assert build.share(model, 0) == model  # a cluster: the backend's own default
    assert build.share(model, 1, workers=2).options.encoder_workers == 2  # a server's model threads
    assert build.share(ModelSpec("whisper", {"encoder_workers": 3}), 1, workers=2).options.encoder_workers == 3  # given: kept
    nar = build.share(ModelSpec("nar"), 2)
    assert nar.options.threads == 2 and nar.backend == "nar"


def test_a_served_backend_gets_two_encoder_workers_or_one_per_model_thread():
    """A server's sessions encode beside each other (CTranslate2's passes run aside of the batches); a lone
    session (translate, eval, mic) keeps the one worker it runs fastest on."""
    from simulst import build, flags
    from simulst.cli import parser

    model = flags.model_spec(parser().parse_args(["serve"]))
    assert model.options.encoder_workers == 1
    for model_threads, workers in ((1, 2), (2, 2), (3, 3)):
        assert build.served(model, model_threads).options.encoder_workers == workers


def every_bad_value():
    """``(options class, field, a value out of its declared range or choices)`` for every options class."""
    import dataclasses
    import typing

    from simulst.cascade import CascadeOptions
    from simulst.streaming.protocol import ServerOptions
    from simulst.streaming.speech import SpeechOptions
    from simulst.streaming.subtitles import SubtitleOptions
    from simulst.training.nar import NarTrainOptions
    from simulst.training.policy import TrainOptions

    classes = [SessionOptions, CascadeOptions, SpeechOptions, SubtitleOptions, ServerOptions, TrainOptions, NarTrainOptions]
    classes += [registry.policies.get(n).Options for n in registry.policies.names()]
    classes += [registry.backends.get(n).Options for n in registry.backends.names()]
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if "min" in f.metadata:
                yield cls, f.name, f.metadata["min"] - (1 if hints[f.name] in (int, int | None) else 0.5)
            if "max" in f.metadata:
                yield cls, f.name, f.metadata["max"] + 1
            if typing.get_origin(hints[f.name]) is typing.Literal:
                yield cls, f.name, "no-such-choice"


@pytest.mark.parametrize("cls, name, value", list(every_bad_value()), ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_option_refuses_a_value_out_of_its_range(cls, name, value):
    """From Python, a mapping (a start message, a sweep point) and a command line alike: one check, on construction."""
    with pytest.raises(OptionError, match=name):
        cls(**{name: value})
    with pytest.raises(OptionError, match=name):
        from_mapping(cls, {name: value})


def test_options_checks_between_fields_and_of_types():
    with pytest.raises(OptionError, match="twice chunk_ms"):
        SessionOptions(chunk_ms=1000, max_buffer_ms=1500)
    with pytest.raises(OptionError, match="must be a number"):
        SessionOptions(chunk_ms="soon")
    with pytest.raises(OptionError, match="must be an integer"):
        WaitKOptions(k=2.5)


def test_a_bad_flag_is_one_line_of_error(capsys):
    from simulst.cli import main

    assert main(["translate", "sample", "--waitk-k", "0", "--policy", "waitk"]) == 2
    assert capsys.readouterr().err.strip() == "simulst: error: k must be at least 1, not 0"


def test_device_and_dtype_resolve_to_what_the_machine_has():
    import torch

    from simulst.models.device import resolve

    device, dtype = resolve("auto", "auto")
    assert device == ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    assert dtype == ("float32" if device == "cpu" else "float16")
    assert resolve("cpu", "auto") == ("cpu", "float32")
    with pytest.raises(OptionError, match="for accelerators"):
        resolve("cpu", "float16")
    if torch.cuda.is_available():
        assert resolve("cuda", "bfloat16") == ("cuda", "bfloat16")
    else:
        with pytest.raises(OptionError, match="no CUDA device"):
            resolve("cuda", "auto")
