"""Silero VAD on a dev clip: silence before the speaker starts, speech after."""

from simulst.streaming.audio import load_audio
from simulst.streaming.vad import WINDOW, SileroVAD, voiced_ms
from tests.conftest import clip


def test_silero_finds_the_speech_of_a_clip():
    audio = load_audio(clip("de-000"))  # the speaker starts after about 4 s of near-silence
    vad = SileroVAD()
    flags = []
    for start in range(0, len(audio), 1000):  # odd chunk sizes: leftovers carry over
        flags += vad.feed(audio[start : start + 1000])
    assert len(flags) == len(audio) // WINDOW
    seconds = lambda a, b: flags[int(a * 16000 / WINDOW) : int(b * 16000 / WINDOW)]  # noqa: E731
    assert not any(seconds(0, 3))
    assert sum(seconds(5, 12)) > 0.7 * len(seconds(5, 12))


def test_voiced_ms_measures_the_speech_in_audio_at_any_rate():
    audio = load_audio(clip("de-000"))
    assert voiced_ms(audio[: 3 * 16000]) == 0.0  # the near-silence before the speaker
    spoken = voiced_ms(audio[5 * 16000 : 12 * 16000])
    assert 0.7 * 7000 < spoken <= 7000
    at_8k = voiced_ms(audio[5 * 16000 : 12 * 16000 : 2].copy(), 8000)  # resampled to 16 kHz first
    assert abs(at_8k - spoken) < 1000
