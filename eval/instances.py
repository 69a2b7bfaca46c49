"""Instances logs: one JSON object per input, with SimulEval's fields (``instances.log``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from simulst.events import Commit, Event


def word_delays(events: Iterable[Event]) -> tuple[list[str], list[float], list[float]]:
    """Words of the committed text, each with the source time and elapsed time of the commit that completed it."""
    text, ends = "", []
    for event in events:
        if isinstance(event, Commit):
            text += event.text
            ends.append((len(text), event.source_ms, event.elapsed_ms))
    words, delays, elapsed = [], [], []
    for match in re.finditer(r"\S+", text):
        end, source_ms, elapsed_ms = next(e for e in ends if e[0] >= match.end())
        words.append(match.group())
        delays.append(source_ms)
        elapsed.append(elapsed_ms)
    return words, delays, elapsed


def make_instance(index: int, events: list[Event], source: str, source_length: float, reference: str, **extra) -> dict:
    words, delays, elapsed = word_delays(events)
    return {
        "index": index,
        "prediction": " ".join(words),
        "delays": delays,
        "elapsed": elapsed,
        "prediction_length": len(words),
        "reference": reference,
        "source": [source],
        "source_length": source_length,
        **extra,
    }


def read_log(path: str | Path) -> list[dict]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
