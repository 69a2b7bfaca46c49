"""SRT/WebVTT cues: timed by emission, increasing, never overlapping, within line limits."""

import re

from simulst.events import Commit, End
from simulst.streaming.subtitles import SubtitleOptions, cues, to_srt, to_vtt

EVENTS = [
    Commit(" For the best views of Hong Kong,", 2000, 10, 2010),
    Commit(" leave the island and head for the Kowloon waterfront", 4000, 10, 4010),
    Commit(" opposite. The next sentence", 6500, 10, 6510),
    Commit(" is short.", 7000, 10, 7010),
    End("...", 9000, 10, 9010),
]


def parse_srt(text):
    blocks = [b.splitlines() for b in text.strip().split("\n\n")]
    out = []
    for b in blocks:
        start, end = re.match(r"(\S+) --> (\S+)", b[1]).groups()
        out.append((ms(start), ms(end), b[2:]))
    return out


def ms(stamp):
    h, m, rest = stamp.replace(",", ".").split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(rest)) * 1000)


def test_srt_is_valid():
    parsed = parse_srt(to_srt(cues(EVENTS)))
    assert parsed[0][0] == 2000  # the first cue appears when its first word is emitted
    for (s1, e1, lines), (s2, _, _) in zip(parsed, parsed[1:]):
        assert s1 < e1 <= s2  # increasing, no overlap
    assert all(len(line) <= 42 for _, _, lines in parsed for line in lines)
    assert all(len(lines) <= 2 for _, _, lines in parsed)
    text = " ".join(" ".join(lines) for _, _, lines in parsed)
    assert text == "For the best views of Hong Kong, leave the island and head for the Kowloon waterfront opposite. The next sentence is short."
    assert parsed[-1][1] >= 9000  # the last cue stays until the end of the source


def test_a_sentence_end_closes_the_cue():
    layout = cues(EVENTS)
    assert any(cue.lines[-1].endswith("opposite.") for cue in layout)


def test_vtt_header_and_dot_milliseconds():
    text = to_vtt(cues(EVENTS, SubtitleOptions(line_chars=30)))
    assert text.startswith("WEBVTT\n\n00:00:02.000 --> ")
    assert all(len(line) <= 30 for line in text.splitlines() if "-->" not in line)
