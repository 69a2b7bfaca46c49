"""Silero VAD on a dev clip: silence before the speaker starts, speech after."""

from simulst.streaming.audio import load_audio
from simulst.streaming.vad import WINDOW, SileroVAD
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
