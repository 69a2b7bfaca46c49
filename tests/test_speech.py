"""Speech output: phrases spoken as text is committed, never overlapping, aligned to source time."""

import numpy as np
import pytest

from simulst.clock import StepClock
from simulst.options import SessionOptions
from simulst.policies import WaitK, WaitKOptions
from simulst.session import Session
from simulst.streaming.speech import SpeakingSession, SpeechOptions, render
from tests.fake import FakeBackend, timecoded

WORDS = [(w, 0) for w in "for the best views of Hong Kong, leave the island".split()]


class Beeper:
    """A fake voice: 100 ms of tone per character."""

    sample_rate = 1000

    def __init__(self):
        self.spoken = []

    def synthesize(self, text):
        self.spoken.append(text)
        return np.ones(100 * len(text), np.float32)


def test_phrases_are_spoken_in_order_without_overlap():
    voice = Beeper()
    inner = Session(FakeBackend(WORDS), WaitK(WaitKOptions(k=1, stride_ms=500)), SessionOptions(chunk_ms=500), StepClock(0))
    session = SpeakingSession(inner, voice, SpeechOptions(min_words=3))
    session.feed_audio(timecoded(3000))
    session.feed_eof()
    events = list(session.events())
    speech = [e for e in events if e.type == "speech"]
    assert voice.spoken == ["for the best", "views of Hong", "Kong, leave the island"]
    assert [s.text for s in speech] == voice.spoken
    assert speech[0].start_ms == 1500  # spoken when its third word is committed
    for a, b in zip(speech, speech[1:]):
        assert b.start_ms >= a.start_ms + a.duration_ms  # a phrase waits for the previous one
    assert events[-1].type == "final" and events[-2].type == "speech"
    track, rate = render(speech, 3000)
    assert rate == 1000 and len(track) >= speech[-1].start_ms + speech[-1].duration_ms
    assert track[int(speech[0].start_ms) - 1] == 0 and track[int(speech[0].start_ms)] == 1


@pytest.mark.model
def test_german_clip_becomes_english_speech(whisper_base, tmp_path, capsys):
    """--speech-out writes a wav whose transcription by the embedded Whisper matches the text output."""
    from simulst import build
    from simulst.cli import main
    from simulst.eval.quality import wer
    from simulst.streaming.audio import load_audio

    out = tmp_path / "speech.wav"
    assert main(["translate", "sample", "--speech-out", str(out)]) == 0
    text = capsys.readouterr().out.strip().splitlines()[-1]
    session = build.session(whisper_base, build.policy("offline"), SessionOptions(src_lang="en", task="transcribe"))
    session.feed_audio(load_audio(out))
    session.feed_eof()
    heard = list(session.events())[-1].text
    assert wer([heard], [text]) < 30, (heard, text)


def test_speech_metrics_known_values():
    from simulst.eval.speech import speech_metrics

    def spoken(intervals, delays):
        durations = [d for _, d in intervals]
        return {"intervals": intervals, "delays": delays, "elapsed": [d + 100 for d in delays], "durations": durations}

    instances = [
        {"speech": spoken([[1000, 500], [2000, 300], [2300, 700]], [1000, 2000, 2000]), "source_length": 2500,
         "asr": "the cat sat on the mat", "reference": "the cat sat on the mat"},
        {"speech": spoken([[4000, 1000]], [4000]), "source_length": 4500, "asr": "a dog ran in the park", "reference": "a dog ran in the park"},
    ]
    m = speech_metrics(instances)
    assert m["SpeechStartOffset"] == 2500  # mean of 1000 and 4000
    assert m["SpeechEndOffset"] == (500 + 500) / 2  # 3000 - 2500, 5000 - 4500
    assert m["DiscontinuitySum"] == 250 and m["DiscontinuityNum"] == 0.5 and m["DiscontinuityAve"] == 250
    assert m["ASR_BLEU"] == pytest.approx(100)
    # ATD in 300 ms virtual words. First instance: source words end at 300, 600, 900, 1000 | 1300, 1600, 1900,
    # 2000; speech words end at 1300, 1500 | 2300, 2600, 2900, 3000 -> lags 1000, 900, 1400, 1600, 1600, 1400.
    # Second: source words end at 300 ... 3900, 4000; speech at 4300, 4600, 4900, 5000 -> lags 4000, 4000, 4000, 3800
    assert m["SpeechATD"] == pytest.approx((7900 / 6 + 3950) / 2)
    assert m["SpeechATD_CA"] > m["SpeechATD"]


@pytest.mark.model
def test_eval_speech_reports_speech_latency_and_asr_bleu(whisper_base, tmp_path, capsys):
    """`eval --speech` on a German dev clip: the output is spoken, transcribed back and scored."""
    import json
    import re

    from simulst.cli import main
    from tests.conftest import FLEURS

    data = FLEURS  # its first de-en row is fleurs-de-000
    args = ["eval", "--data", str(data), "--directions", "de-en", "--limit", "1", "--output", str(tmp_path / "out"), "--speech"]
    assert main(args) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())["overall"]
    instance = json.loads((tmp_path / "out" / "instances.log").read_text().splitlines()[0])
    spoken = instance["speech"]
    assert spoken["intervals"] and len(spoken["delays"]) == len(spoken["durations"]) == len(spoken["intervals"])
    assert all(start >= delay for (start, _), delay in zip(spoken["intervals"], spoken["delays"]))
    said, heard = (set(re.findall(r"[a-z']+", text.lower())) for text in (instance["prediction"], instance["asr"]))
    assert len(said & heard) >= 0.6 * len(said)  # the spoken English, heard back by Whisper: most of its words
    assert 0 < scores["SpeechStartOffset"] < instance["source_length"]
    assert scores["SpeechATD"] > 0 and scores["SpeechATD_CA"] >= scores["SpeechATD"]
    assert scores["ASR_BLEU"] > 0 and scores["DiscontinuityNum"] >= 0
