"""Instances logs: one JSON object per input, with SimulEval's fields (``instances.log``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from simulst.events import Commit, Event, Guard, Partial


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


def display(events: Iterable[Event]) -> tuple[int, int, list[float]]:
    """``(erased words, revisions, display delays)`` of the displayed text: after each decision round (events
    with one ``source_ms``), the display is the committed text plus that round's partial. A revision is a round
    that removes displayed words (a last word that only grows, as when a comma is attached, removes nothing);
    normalized erasure is erased words over final words. A final word's display
    delay is the round from which it was shown, with everything before it, as it ends up (first appearance)."""
    committed, shown, since, erased, revisions = "", [], [], 0, 0
    rounds: dict[float, list[Event]] = {}
    for event in events:
        if isinstance(event, (Commit, Partial)):
            rounds.setdefault(event.source_ms, []).append(event)
    for source_ms, round_events in rounds.items():
        partial = ""
        for event in round_events:
            if isinstance(event, Commit):
                committed += event.text
            else:
                partial = event.text
        new = (committed + partial).split()
        keep = next((i for i, (a, b) in enumerate(zip(shown, new)) if a != b), min(len(shown), len(new)))
        extended = keep == len(shown) - 1 < len(new) and new[keep].startswith(shown[keep])  # "word" -> "word,"
        if len(shown) > keep and not extended:
            erased += len(shown) - keep
            revisions += 1
        shown, since = new, since[:keep] + [source_ms] * (len(new) - keep)
    return erased, revisions, since[: len(committed.split())]


def make_instance(index: int, events: list[Event], source: str, source_length: float, reference: str, **extra) -> dict:
    words, delays, elapsed = word_delays(events)
    erased, revisions, shown = display(events)
    return {
        "index": index,
        "prediction": " ".join(words),
        "delays": delays,
        "elapsed": elapsed,
        "prediction_length": len(words),
        "reference": reference,
        "source": [source],
        "source_length": source_length,
        "erased": erased,
        "revisions": revisions,
        "display_delays": shown,
        "guards": sum(isinstance(e, Guard) for e in events),
        **extra,
    }


def read_log(path: str | Path) -> list[dict]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
