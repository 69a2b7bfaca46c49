"""Evaluation data: the project's TSV format, or SimulEval's ``--source``/``--target`` list files."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from simulst.errors import SimulstError

COLUMNS = ["id", "audio", "duration", "src_lang", "tgt_lang", "source", "reference"]
TRAINING_COLUMNS = ["id", "audio", "duration", "lang"]
"""A training set's TSV (../shared/data/train: ``id audio duration lang text source licence``): rows of
untranscribed speech in ``lang`` (``text`` is optional), read as ``lang`` -> no target (X->en, or English
transcription, for the recipes)."""
SEGMENT_COLUMNS = ["segment_id", "offset", "duration", "source", "reference"]
"""A long-form stream's ``NAME.segments.tsv`` (seconds), one line a sentence."""
DEV_DATA = "../shared/data"
"""Where the development sets are unless ``$SIMULST_DEV_DATA`` says otherwise (relative to the working folder)."""


def dev_data() -> Path:
    """The folder of the development sets (FLEURS, LibriTrans, long-form): ``$SIMULST_DEV_DATA`` or ``DEV_DATA``."""
    return Path(os.environ.get("SIMULST_DEV_DATA") or DEV_DATA)


def data_path(path: str | Path) -> Path:
    """``path`` as given, or, when it is relative and not there, the same path under ``dev_data()``: benchmarks
    and recipes name the development sets as ``fleurs/fleurs.tsv``."""
    path = Path(path)
    if path.exists() or path.is_absolute() or not (dev_data() / path).exists():
        return path
    return dev_data() / path


@dataclass(frozen=True)
class Row:
    id: str
    audio: Path
    src_lang: str | None
    tgt_lang: str | None
    source: str
    reference: str
    segments: tuple[tuple[float, float, str, str], ...] = ()
    """For a long-form stream: ``(offset_ms, duration_ms, source, reference)`` of each sentence."""
    licence: str = ""
    """The audio's licence, where the data file gives one (a training set's ``licence`` column)."""

    @property
    def direction(self) -> str:
        return f"{self.src_lang or 'xx'}-{self.tgt_lang or 'xx'}"


def read_tsv(path: str | Path, src_lang: str | None = None, tgt_lang: str | None = None) -> list[Row]:
    """``id audio duration src_lang tgt_lang source reference`` (and optionally ``licence``), tab-separated, a
    header, audio relative to the file (or a training set's ``TRAINING_COLUMNS``).

    A long-form ``NAME.segments.tsv`` (``segment_id offset duration source reference``, seconds; optionally
    ``src_lang tgt_lang``, used where the call gives none) is read as one row: the stream ``NAME.flac`` (or .wav)
    with its sentences.
    """
    path = data_path(path)
    if not path.exists():
        raise SimulstError(f"data file not found: {path} (nor under {dev_data()}, $SIMULST_DEV_DATA)")
    if path.name.endswith(".segments.tsv"):
        return [read_stream(path, src_lang, tgt_lang)]
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if set(TRAINING_COLUMNS) <= set(reader.fieldnames or []) and "src_lang" not in (reader.fieldnames or []):
            return [Row(r["id"], path.parent / r["audio"], r["lang"] or None, None, r.get("text") or "", "", licence=r.get("licence") or "") for r in reader]
        _check_columns(path, reader.fieldnames, COLUMNS)
        return [
            Row(r["id"], path.parent / r["audio"], r["src_lang"] or None, r["tgt_lang"] or None, r["source"], r["reference"], licence=r.get("licence") or "")
            for r in reader
        ]


def read_lists(source: str | Path, target: str | Path, src_lang: str | None = None, tgt_lang: str | None = None) -> list[Row]:
    """SimulEval's inputs: one audio path per line, one reference per line."""
    sources = Path(source).read_text(encoding="utf-8").splitlines()
    targets = Path(target).read_text(encoding="utf-8").splitlines()
    if len(sources) != len(targets):
        raise SimulstError(f"{source} has {len(sources)} lines but {target} has {len(targets)}")
    base = Path(source).parent
    return [Row(str(i), base / s if not Path(s).is_absolute() else Path(s), src_lang, tgt_lang, "", t) for i, (s, t) in enumerate(zip(sources, targets))]


def read_stream(path: Path, src_lang: str | None, tgt_lang: str | None) -> Row:
    stem = path.name[: -len(".segments.tsv")]
    audio = next((path.parent / f"{stem}{ext}" for ext in (".flac", ".wav", ".ogg") if (path.parent / f"{stem}{ext}").exists()), None)
    if audio is None:
        raise SimulstError(f"{path}: no audio {stem}.flac/.wav/.ogg beside it")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        _check_columns(path, reader.fieldnames, SEGMENT_COLUMNS)
        rows = list(reader)
    segments = tuple((float(r["offset"]) * 1000, float(r["duration"]) * 1000, r["source"], r["reference"]) for r in rows)
    first = rows[0] if rows else {}
    src_lang = src_lang or first.get("src_lang") or None
    tgt_lang = tgt_lang or first.get("tgt_lang") or None
    return Row(stem, audio, src_lang, tgt_lang, " ".join(s[2] for s in segments), " ".join(s[3] for s in segments), segments)


def _check_columns(path: Path, fieldnames, expected: list[str]) -> None:
    missing = set(expected) - set(fieldnames or [])
    if missing:
        raise SimulstError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected {' '.join(expected)}")
