"""`simulst mic` without a sound card: ALSA's file plugin plays a dev clip as the default capture device."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulst.streaming.audio import load_audio
from tests.conftest import clip
from tests.fake import FakeBackend
from tests.test_server import TEXT, WORDS, Running

SIMULST = str(Path(sys.executable).parent / "simulst")


@pytest.fixture
def alsa_home(tmp_path):
    """A HOME whose .asoundrc makes the default ALSA device read a raw 16 kHz mono recording of a dev clip."""
    raw = tmp_path / "clip.raw"
    (load_audio(clip("de-000")) * 32767).astype("<i2").tofile(raw)
    (tmp_path / ".asoundrc").write_text(
        f'pcm.!default {{\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "{raw}"\n format "raw"\n}}\n'
    )
    return tmp_path


def mic(home, *args, timeout=600):
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([SIMULST, "mic", "--seconds", "12", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_mic_through_a_server(alsa_home):
    running = Running(FakeBackend(WORDS, sample_rate=16000))
    try:
        done = mic(alsa_home, "--server", running.url, "--src-lang", "de", timeout=120)
    finally:
        running.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == TEXT


@pytest.mark.model
def test_mic_with_the_local_model(alsa_home, model_cache):
    done = mic(alsa_home, "--src-lang", "de")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Hong Kong" in done.stdout
