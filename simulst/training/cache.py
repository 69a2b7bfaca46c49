"""Per-utterance caches of the recipes: one npz file per item, named by a key of what produced it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np


def key(*parts: object) -> str:
    """A file name for what these parts (versions, model identity, options, the item) produce."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def once(path: Path, make: Callable[[], dict]) -> Path:
    """``path`` holding ``make()``'s arrays, computed only if it is not there yet; written whole or not at all, so
    a run that is interrupted resumes at the item it was on and later runs compute only new items."""
    if not path.exists():
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, **make())
        partial.replace(path)
    return path
