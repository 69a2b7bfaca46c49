"""EDAtt and LocalAgreement decisions on scripted fake models, exactly."""

import pytest

from simulst.clock import StepClock
from simulst.errors import OptionError
from simulst.options import SessionOptions
from simulst.policies import EDAtt, EDAttOptions, LocalAgreement, LocalAgreementOptions
from tests.fake import FakeBackend
from tests.test_session import run

WORDS = [("one", 500), ("two", 1500), ("three", 2500), ("four", 3500)]


def commits(events):
    return [(e.text, e.source_ms) for e in events if e.type == "commit"]


def test_local_agreement_writes_what_two_rounds_agree_on():
    backend = FakeBackend(WORDS, guess_unheard=True)
    events = run(backend, LocalAgreement(), 4, clock=StepClock(0))
    # round 1 only proposes; each later round confirms the words heard in both rounds
    assert commits(events) == [(" one", 2000), (" two", 3000), (" three", 4000), (" four", 4000)]
    assert events[-1].text == "one two three four"


def test_local_agreement_of_three_waits_one_round_more():
    backend = FakeBackend(WORDS, guess_unheard=True)
    events = run(backend, LocalAgreement(LocalAgreementOptions(n=3)), 4, clock=StepClock(0))
    assert commits(events) == [(" one", 3000), (" two", 4000), (" three four", 4000)]


def test_local_agreement_needs_two_hypotheses():
    with pytest.raises(OptionError, match="n must be at least 2"):
        LocalAgreement(LocalAgreementOptions(n=1))


def test_edatt_reads_when_attention_mass_is_on_the_last_frames():
    # 40% of every token's attention sits on the last frame
    backend = FakeBackend(WORDS, tail_attention=0.4)
    cautious = run(backend, EDAtt(EDAttOptions(frames=2, alpha=0.3)), 4, clock=StepClock(0))
    assert commits(cautious) == [(" one two three four", 4000)]  # nothing before the end of input
    tolerant = run(FakeBackend(WORDS, tail_attention=0.4), EDAtt(EDAttOptions(frames=2, alpha=0.5)), 4, clock=StepClock(0))
    assert commits(tolerant) == [(" one", 1000), (" two", 2000), (" three", 3000), (" four", 4000)]


def test_edatt_counts_the_frames_option():
    # "two" is heard at 1.5 s: at 2 s it lies 50 frames before the end, inside a 60-frame window
    events = run(FakeBackend(WORDS), EDAtt(EDAttOptions(frames=60, alpha=0.5)), 4, SessionOptions(), clock=StepClock(0))
    assert commits(events)[:2] == [(" one", 2000), (" two", 3000)]
