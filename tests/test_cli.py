"""``simulst translate``: output formats, and one clear error line (never a traceback) for bad input."""

import json

import pytest

from simulst.cli import main
from tests.conftest import clip


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_audio_file(capsys):
    code, out, err = run_cli(capsys, "translate", "/no/such/clip.flac")
    assert code == 2 and err.strip() == "simulst: error: audio file not found: /no/such/clip.flac"


def test_unreadable_audio_file(tmp_path, capsys):
    (tmp_path / "clip.wav").write_text("not audio")
    code, _, err = run_cli(capsys, "translate", str(tmp_path / "clip.wav"))
    assert code == 2 and err.startswith("simulst: error: cannot read audio") and "Traceback" not in err


def test_unknown_policy_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["translate", "x.wav", "--policy", "nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_model_dir_without_weights(tmp_path, capsys):
    code, _, err = run_cli(capsys, "translate", str(clip("de-000")), "--model", str(tmp_path))
    assert code == 2 and "holds no model weights" in err


@pytest.mark.model
def test_unknown_language(whisper_base, capsys):
    code, _, err = run_cli(capsys, "translate", str(clip("de-000")), "--src-lang", "klingon")
    assert code == 2 and "unknown source language 'klingon'" in err


@pytest.mark.model
def test_direction_without_a_model_names_what_to_install(whisper_base, capsys):
    code, _, err = run_cli(capsys, "translate", str(clip("de-000")), "--src-lang", "de", "--tgt-lang", "fr")
    assert code == 2 and "no text MT model for de->fr" in err and "--mt-model" in err
    code, _, err = run_cli(capsys, "translate", str(clip("de-000")), "--tgt-lang", "fr")
    assert code == 2 and "needs the source language" in err


@pytest.mark.model
def test_jsonl_events(whisper_base, capsys):
    code, out, _ = run_cli(capsys, "translate", str(clip("de-000")), "--src-lang", "de", "--policy", "alignatt", "--format", "jsonl")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "final" and "Hong Kong" in events[-1]["text"]
    commits = [e for e in events if e["type"] == "commit"]
    assert len([e for e in commits if e["source_ms"] < 17940]) >= 3
    assert all(set(e) == {"type", "text", "source_ms", "compute_ms", "elapsed_ms"} for e in events)
    assert "".join(e["text"] for e in commits).strip() == events[-1]["text"]


@pytest.mark.model
def test_bundled_sample_in_text_format(whisper_base, capsys):
    code, out, _ = run_cli(capsys, "translate", "sample", "--policy", "waitk")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("[") and " s] " in lines[0]
    assert "Hong Kong" in lines[-1]


@pytest.mark.model
def test_subtitles_from_the_cli(whisper_base, capsys):
    code, out, _ = run_cli(capsys, "translate", "sample", "--format", "vtt")
    assert code == 0 and out.startswith("WEBVTT\n\n00:00:")
    assert "Hong Kong" in out.replace("\n", " ")
