"""Reading audio: any rate and channel count in, mono 16 kHz float32 out; clear errors for bad files."""

import numpy as np
import pytest
import soundfile

from simulst.errors import AudioError
from simulst.streaming.audio import load_audio


def test_stereo_44k_becomes_mono_16k(tmp_path):
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(tmp_path / "a.wav", np.stack([tone, tone], axis=1), 44100)
    audio = load_audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 2


def test_ogg_and_8k(tmp_path):
    soundfile.write(tmp_path / "a.ogg", np.zeros(8000), 8000)
    assert abs(len(load_audio(tmp_path / "a.ogg")) - 16000) <= 1


def test_missing_file():
    with pytest.raises(AudioError, match="not found"):
        load_audio("/nonexistent/clip.wav")


def test_garbage_file(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(AudioError, match="cannot read audio"):
        load_audio(tmp_path / "x.wav")


def test_empty_file(tmp_path):
    soundfile.write(tmp_path / "e.wav", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(tmp_path / "e.wav")
