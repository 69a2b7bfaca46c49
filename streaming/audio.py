"""Reading audio files and converting any rate or channel count to the model's mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulst.errors import AudioError


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels of a ``(frames, channels)`` array."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling with torchaudio (no-op when the rates match)."""
    if rate == target:
        return samples.astype(np.float32, copy=False)
    if rate <= 0:
        raise AudioError(f"invalid sample rate {rate}")
    import torch
    import torchaudio.functional

    return torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), rate, target).numpy()


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] (clipped) as 16-bit signed little-endian PCM."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """A file (wav, flac, ogg, ... anything libsndfile reads) as float32 mono at ``sample_rate``."""
    import soundfile

    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"cannot read audio {path}: {exc}") from exc
    if len(samples) == 0:
        raise AudioError(f"audio file holds no samples: {path}")
    mono = to_mono(samples)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"audio file holds NaN or infinite samples: {path}")
    return resample(mono, rate, sample_rate)
