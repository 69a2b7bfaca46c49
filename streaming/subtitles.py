"""Subtitles from commit events: cues timed by emission (source) time, with line-length and reading-speed limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from simulst.events import Commit, End, Event
from simulst.options import Options, opt


@dataclass(frozen=True)
class SubtitleOptions(Options):
    """Cue layout for --format srt|vtt."""

    line_chars: int = opt(42, "most characters on a subtitle line", min=1)
    lines: int = opt(2, "most lines in a cue", min=1)
    chars_per_s: float = opt(17.0, "reading speed: a cue stays at least len(text)/chars_per_s seconds, unless the next cue starts", min=1)


MIN_MS = 700.0


@dataclass(frozen=True)
class Cue:
    start_ms: float
    end_ms: float
    lines: tuple[str, ...]


def _wrap(words: list[str], width: int) -> list[str]:
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def cues(events: Iterable[Event], options: SubtitleOptions = SubtitleOptions()) -> list[Cue]:
    """A cue starts when its first word is emitted and holds words until it is full or a sentence ends."""
    pending: list[tuple[float, list[str]]] = []  # (start, words) of cues not yet timed to their end
    end_of_source = 0.0
    for event in events:
        if isinstance(event, End):
            end_of_source = event.source_ms
        if not isinstance(event, Commit):
            continue
        for word in event.text.split():
            if not pending or _closed(pending[-1][1], options):
                pending.append((event.source_ms, []))
            pending[-1][1].append(word)
    # a cue shows no earlier than its first word's emission, and each one at least MIN_MS before the next
    starts: list[float] = []
    for emitted, _ in pending:
        starts.append(max(emitted, starts[-1] + MIN_MS) if starts else emitted)
    out: list[Cue] = []
    for i, (start, (_, words)) in enumerate(zip(starts, pending)):
        end = start + max(1000 * len(" ".join(words)) / options.chars_per_s, 1000.0)
        end = min(end, starts[i + 1]) if i + 1 < len(starts) else max(end, end_of_source)
        out.append(Cue(start, end, tuple(_wrap(words, options.line_chars))))
    return out


def _closed(words: list[str], options: SubtitleOptions) -> bool:
    full = len(_wrap(words, options.line_chars)) >= options.lines and len(_wrap(words + ["x"], options.line_chars)) > options.lines
    return full or (bool(words) and words[-1][-1] in ".!?")


def _stamp(ms: float, sep: str) -> str:
    ms = int(round(ms))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def to_srt(cue_list: list[Cue]) -> str:
    return "".join(f"{i}\n{_stamp(c.start_ms, ',')} --> {_stamp(c.end_ms, ',')}\n" + "\n".join(c.lines) + "\n\n" for i, c in enumerate(cue_list, 1))


def to_vtt(cue_list: list[Cue]) -> str:
    return "WEBVTT\n\n" + "".join(f"{_stamp(c.start_ms, '.')} --> {_stamp(c.end_ms, '.')}\n" + "\n".join(c.lines) + "\n\n" for c in cue_list)
