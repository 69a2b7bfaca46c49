"""Long utterances without pauses: the clips of one direction joined end to end, the silence at their edges cut.

Speech that runs on for 45-60 s without a pause is what outgrows a session's history and Whisper's 30 s window;
read-speech test sets rarely have it. ``join_clips`` makes it from any data TSV; ``write_joined`` writes it as a
data TSV and, per utterance, as a long-form stream whose sentences are the clips (``ID.segments.tsv``: scored
after resegmentation, with StreamLAAL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulst.eval.data import COLUMNS, SEGMENT_COLUMNS, Row

MARGIN_S = 0.1
"""Audio kept around the first and last speech window of each clip (joins then sound like a word boundary)."""


@dataclass(frozen=True)
class Joined:
    id: str
    audio: np.ndarray
    rows: list[Row]
    lengths: list[int]
    """Samples each clip takes in ``audio``, in order."""


def speech_span(audio: np.ndarray, rate: int) -> tuple[int, int]:
    """``(start, stop)`` samples from the first to the last window Silero VAD calls speech, plus a margin."""
    from simulst.streaming.vad import SileroVAD

    flags = SileroVAD().feed(audio)
    speech = [i for i, flag in enumerate(flags) if flag]
    if not speech:
        return 0, 0
    window, margin = len(audio) // max(len(flags), 1), int(MARGIN_S * rate)
    return max(0, speech[0] * window - margin), min(len(audio), (speech[-1] + 1) * window + margin)


def join_clips(rows: list[Row], load, rate: int, min_s: float = 45.0, max_s: float = 60.0) -> list[Joined]:
    """Group the rows of each direction, in order, into utterances of ``min_s``-``max_s`` seconds of speech.

    ``load(path)`` reads a clip at ``rate``. A clip that would take an utterance past ``max_s`` starts the next
    one; what is left at the end of a direction (under ``min_s``) is not used."""
    joined: list[Joined] = []
    for direction in dict.fromkeys(row.direction for row in rows):
        parts: list[np.ndarray] = []
        used: list[Row] = []
        count = 0
        for row in (r for r in rows if r.direction == direction):
            audio = load(row.audio)
            start, stop = speech_span(audio, rate)
            if stop <= start:
                continue
            if used and (sum(map(len, parts)) + stop - start) / rate > max_s:
                parts, used = [], []
            parts.append(audio[start:stop])
            used.append(row)
            if sum(map(len, parts)) / rate >= min_s:
                joined.append(Joined(f"{direction}-long-{count}", np.concatenate(parts), used, [len(p) for p in parts]))
                parts, used, count = [], [], count + 1
    return joined


def write_joined(joined: list[Joined], output: str | Path, rate: int) -> Path:
    """``OUTPUT/joined.tsv`` (the data TSV format, with the clips' licences), ``OUTPUT/joined.clips.tsv`` (which
    clips each utterance joins), ``OUTPUT/audio/ID.flac`` and beside it ``ID.segments.tsv`` (the clips as the
    stream's sentences, with its languages); returns the data TSV's path."""
    import soundfile

    output = Path(output)
    (output / "audio").mkdir(parents=True, exist_ok=True)
    lines = ["\t".join([*COLUMNS, "licence"])]
    for item in joined:
        soundfile.write(str(output / "audio" / f"{item.id}.flac"), item.audio, rate)
        first = item.rows[0]
        source = " ".join(r.source for r in item.rows)
        reference = " ".join(r.reference for r in item.rows)
        licence = ", ".join(dict.fromkeys(r.licence for r in item.rows if r.licence))
        fields = [item.id, f"audio/{item.id}.flac", f"{len(item.audio) / rate:.3f}", first.src_lang or "", first.tgt_lang or "", source, reference, licence]
        lines.append("\t".join(fields))
        _write_segments(output / "audio" / f"{item.id}.segments.tsv", item, rate)
    tsv = output / "joined.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clips = ["id\tclips"] + [f"{item.id}\t{','.join(r.id for r in item.rows)}" for item in joined]
    (output / "joined.clips.tsv").write_text("\n".join(clips) + "\n", encoding="utf-8")
    return tsv


def _write_segments(path: Path, item: Joined, rate: int) -> None:
    lines = ["\t".join([*SEGMENT_COLUMNS, "src_lang", "tgt_lang"])]
    for row, start, length in zip(item.rows, np.cumsum([0, *item.lengths[:-1]]), item.lengths):
        lines.append("\t".join([row.id, f"{start / rate:.3f}", f"{length / rate:.3f}", row.source, row.reference, row.src_lang or "", row.tgt_lang or ""]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
