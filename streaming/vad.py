"""Voice activity detection with Silero VAD (its model ships in the silero-vad wheel)."""

from __future__ import annotations

import functools
import threading

import numpy as np

from simulst.errors import ModelError

WINDOW = 512  # samples per decision at 16 kHz (32 ms)


class SileroVAD:
    """Per-session state over Silero's model: ``feed`` returns one speech/no-speech flag per 32 ms window."""

    def __init__(self, threshold: float = 0.5) -> None:
        try:
            from silero_vad import load_silero_vad
        except ImportError as exc:
            raise ModelError("VAD needs silero-vad: pip install silero-vad") from exc
        self.model, self.threshold = load_silero_vad(), threshold
        self.rest = np.zeros(0, np.float32)

    def feed(self, samples: np.ndarray) -> list[bool]:
        import torch

        audio = np.concatenate([self.rest, samples])
        whole = len(audio) // WINDOW * WINDOW
        self.rest = audio[whole:]
        with torch.inference_mode():
            return [float(self.model(torch.from_numpy(audio[i : i + WINDOW]), 16000)) >= self.threshold for i in range(0, whole, WINDOW)]


def voiced_ms(audio: np.ndarray, rate: int = 16000) -> float:
    """Milliseconds of ``audio`` (mono at ``rate``, resampled to 16 kHz) in which Silero hears speech."""
    if rate != 16000:
        audio = np.interp(np.arange(len(audio) * 16000 // rate) * rate / 16000, np.arange(len(audio)), audio).astype(np.float32)
    return _speech_windows(audio) * WINDOW / 16


def voiced(audio: np.ndarray) -> bool:
    """Whether Silero hears speech anywhere in ``audio`` (16 kHz; read from its start, stopping at the first
    speech window)."""
    return _speech_windows(audio, first=True) > 0


def _speech_windows(audio: np.ndarray, first: bool = False) -> int:
    """Silero's speech windows in 16 kHz ``audio``, read from its start (with ``first``: up to the first one). One
    model serves every thread, one call at a time."""
    import torch

    vad, lock = _shared()
    count = 0
    with lock, torch.inference_mode():
        vad.model.reset_states()
        for i in range(0, len(audio) // WINDOW * WINDOW, WINDOW):
            count += float(vad.model(torch.from_numpy(audio[i : i + WINDOW]), 16000)) >= vad.threshold
            if count and first:
                break
    return count


@functools.lru_cache(maxsize=None)
def _shared() -> tuple[SileroVAD, threading.Lock]:
    return SileroVAD(), threading.Lock()
