"""The ASR -> MT cascade on a scripted ASR and a scripted translator; and on the embedded models."""

import pytest

from simulst.cascade import CascadeOptions, CascadeSession
from simulst.clock import StepClock
from simulst.options import SessionOptions
from simulst.policies import AlignAtt, AlignAttOptions
from simulst.session import Session
from tests.conftest import clip
from tests.fake import FakeBackend, timecoded

SOURCE = [("the", 500), ("black", 1500), ("cat", 2500), ("sat", 3500), ("down.", 4500)]


class Upper:
    """Translates by upper-casing; with ``unsure``, the last word of an unfinished sentence gets a '~'."""

    def __init__(self, unsure: bool) -> None:
        self.unsure, self.calls = unsure, []

    def translate(self, text: str) -> str:
        self.calls.append(text)
        words = text.upper().split()
        if self.unsure and words and not words[-1].endswith("."):
            words[-1] += "~"
        return " ".join(words)


def run(translator, options: CascadeOptions, seconds: float = 5, source=SOURCE):
    asr = Session(FakeBackend(source), AlignAtt(AlignAttOptions(threshold_ms=20)), SessionOptions(task="transcribe"), StepClock(0))
    session = CascadeSession(asr, translator, options, StepClock(0))
    session.feed_audio(timecoded(int(seconds * 1000)))
    session.feed_eof()
    return [(e.type, e.text, e.source_ms) for e in session.events()]


def test_local_agreement_writes_what_two_translations_agree_on():
    assert run(Upper(unsure=True), CascadeOptions()) == [
        ("commit", " THE", 3000),
        ("commit", " BLACK", 4000),
        ("commit", " CAT SAT DOWN.", 5000),  # the sentence ended: its full translation completes it
        ("final", "THE BLACK CAT SAT DOWN.", 5000),
    ]


def test_waitk_translates_all_but_the_last_k_source_words():
    events = run(Upper(unsure=False), CascadeOptions(text_policy="waitk", text_k=2))
    assert events == [
        ("commit", " THE", 3000),
        ("commit", " BLACK", 4000),
        ("commit", " CAT SAT DOWN.", 5000),
        ("final", "THE BLACK CAT SAT DOWN.", 5000),
    ]


def test_sentence_policy_waits_for_the_sentence():
    translator = Upper(unsure=True)
    assert run(translator, CascadeOptions(text_policy="sentence")) == [
        ("commit", " THE BLACK CAT SAT DOWN.", 5000),
        ("final", "THE BLACK CAT SAT DOWN.", 5000),
    ]
    assert translator.calls == ["the black cat sat down."]


def test_unfinished_sentence_is_completed_at_end_of_input():
    source = SOURCE[:-1] + [("down", 4500)]
    events = run(Upper(unsure=False), CascadeOptions(), source=source)
    # exact prefix translations agree at once; the sentence's last word comes with the end of input
    assert events[-3:] == [("commit", " SAT", 5000), ("commit", " DOWN", 5000), ("final", "THE BLACK CAT SAT DOWN", 5000)]


def test_cascade_needs_the_source_language():
    from simulst import build
    from simulst.errors import OptionError

    with pytest.raises(OptionError, match="source language"):
        build.session(FakeBackend(SOURCE), AlignAtt(), SessionOptions(tgt_lang="es"))


def test_direction_without_mt_names_what_to_install():
    from simulst.errors import ModelError
    from simulst.models.mt import text_translator

    with pytest.raises(ModelError, match="no text MT model for en->de.*--mt-model"):
        text_translator("en", "de")


def test_apertium_pipeline_stays_alive_and_keeps_symbols():
    from simulst.models.mt import Apertium

    apertium = Apertium("eng-spa")
    first = apertium.translate("The house is red.")
    assert first == "La casa es roja."
    assert apertium.translate("It costs $5 [or more] / day.") .count("$5") == 1
    pid = apertium._proc.pid
    apertium.translate("Hello world.")
    assert apertium._proc.pid == pid and apertium._proc.poll() is None
    apertium.close()


def test_bergamot_translates_english_to_portuguese():
    from simulst.models.mt import Bergamot

    assert Bergamot("en-pt").translate("The house is red.") == "A casa é vermelha."


@pytest.mark.model
@pytest.mark.parametrize("tgt, expected", [("es", "canales de comunicación"), ("pt", "canais de comunicação")])
def test_english_clip_through_embedded_cascades(whisper_base, tgt, expected):
    from simulst import build
    from simulst.streaming.audio import load_audio

    session = build.session(whisper_base, build.policy("alignatt"), SessionOptions(src_lang="en", tgt_lang=tgt))
    session.feed_audio(load_audio(clip("en-000")))
    session.feed_eof()
    events = list(session.events())
    commits = [e for e in events if e.type == "commit"]
    assert len([e for e in commits if e.source_ms < 10560]) >= 1
    assert expected in events[-1].text
