"""The I/O-free session driven by a scripted fake model: exact events, delays and compute times."""

import numpy as np
import pytest

from simulst.clock import StepClock
from simulst.errors import AudioError, SimulstError
from simulst.events import Commit, End, Guard, Partial
from simulst.options import SessionOptions
from simulst.policies import AlignAtt, AlignAttOptions, Offline, WaitK, WaitKOptions
from simulst.guards import loops
from simulst.session import Session
from tests.fake import FakeBackend, timecoded

WORDS = [("one", 500), ("two", 1500), ("three", 1800), ("four", 3200), ("five", 3990)]


def run(backend, policy, seconds, options=SessionOptions(), feed=None, clock=None, voiced=None):
    session = Session(backend, policy, options, clock or StepClock(0.05), voiced=voiced)
    audio = timecoded(int(seconds * backend.sample_rate))
    for start in range(0, len(audio), feed or len(audio)):
        session.feed_audio(audio[start : start + (feed or len(audio))])
    session.feed_eof()
    return list(session.events())


def test_alignatt_reads_while_attention_is_on_the_last_frames():
    events = run(FakeBackend(WORDS), AlignAtt(AlignAttOptions(threshold_ms=20)), 4)
    # the scripted clock advances 50 ms a read: each round (start, end) costs 50 ms of compute
    ms = pytest.approx
    assert events == [
        Commit(" one", source_ms=1000, compute_ms=ms(50), elapsed_ms=ms(1050)),
        Commit(" two three", source_ms=2000, compute_ms=ms(50), elapsed_ms=ms(2050)),
        # 3000: "four" is not heard yet (attends the last frame): READ, no event
        Commit(" four", source_ms=4000, compute_ms=ms(50), elapsed_ms=ms(4050)),
        # "five" attends frame 399, within 2 frames of the end of 400 frames: only the final round writes it,
        # and that round waits for the previous one to finish
        Commit(" five", source_ms=4000, compute_ms=ms(50), elapsed_ms=ms(4100)),
        End("one two three four five", source_ms=4000, compute_ms=ms(50), elapsed_ms=ms(4100)),
    ]


def test_the_no_speech_gate_is_asked_when_a_first_word_would_be_written():
    """Whisper's gate costs an encoder pass over its 30 s window: it runs only in rounds where the policy would
    write the first word (or partials show text), and once it has passed, not again."""
    deaf = FakeBackend(WORDS, speech_from_ms=2500)
    events = run(deaf, AlignAtt(AlignAttOptions(threshold_ms=20)), 4)
    assert [(e.text, e.source_ms) for e in events if e.type == "commit"] == [(" one two three", 3000), (" four", 4000), (" five", 4000)]
    assert deaf.gated == [1000, 2000, 3000]
    strict = FakeBackend(WORDS)
    run(strict, AlignAtt(AlignAttOptions(threshold_ms=600)), 4)
    assert strict.gated == [2000]  # the policy reads at 1 s: nothing to ask
    shown = FakeBackend(WORDS, speech_from_ms=1500)
    events = run(shown, WaitK(WaitKOptions(k=3)), 4, SessionOptions(partials=True))
    assert shown.gated == [1000, 2000] and [e.source_ms for e in events if e.type == "partial"][0] == 2000


def test_elapsed_queues_rounds_when_compute_is_slower_than_real_time():
    # 1.5 s of compute per 1 s round: the stream falls behind and emissions queue
    events = run(FakeBackend(WORDS), AlignAtt(AlignAttOptions(threshold_ms=20)), 4, clock=StepClock(1.5))
    assert [e.elapsed_ms for e in events if e.type == "commit"] == [pytest.approx(v) for v in (2500, 4000, 7000, 8500)]


def test_alignatt_threshold_trades_latency():
    strict = run(FakeBackend(WORDS), AlignAtt(AlignAttOptions(threshold_ms=600)), 4)
    # "one" (frame 50) is within 60 frames of the end at 1 s (100 frames): it waits for the 2 s round, and so on
    assert [(e.text, e.source_ms) for e in strict if e.type == "commit"] == [
        (" one", 2000),
        (" two three", 3000),
        (" four", 4000),
        (" five", 4000),
    ]


def test_waitk_writes_one_word_per_stride_after_k():
    words = [(w, 500 + 800 * i) for i, w in enumerate(["a", "b", "c", "d", "e", "f", "g"])]
    events = run(FakeBackend(words), WaitK(WaitKOptions(k=2, stride_ms=1000)), 6, clock=StepClock(0))
    assert [(e.type, e.text, e.source_ms) for e in events] == [
        ("commit", " a", 2000),
        ("commit", " b", 3000),
        ("commit", " c", 4000),
        ("commit", " d", 5000),
        ("commit", " e", 6000),
        ("commit", " f g", 6000),  # end of input: the rest is written
        ("final", "a b c d e f g", 6000),
    ]


def test_waitk_counts_words_not_subword_tokens():
    words = [("in", 0), ("+cred", 0), ("+ible", 0), ("news", 0), ("today", 0)]
    policy = WaitK(WaitKOptions(k=1, stride_ms=500))
    events = run(FakeBackend(words), policy, 1.5, SessionOptions(chunk_ms=500), clock=StepClock(0))
    assert [(e.text, e.source_ms) for e in events if e.type == "commit"] == [
        (" incredible", 500),
        (" news", 1000),
        (" today", 1500),
    ]


def test_chunk_size_of_feeding_does_not_change_decisions():
    policy = AlignAtt(AlignAttOptions(threshold_ms=20))
    whole = run(FakeBackend(WORDS), policy, 4, clock=StepClock(0))
    pieces = run(FakeBackend(WORDS), policy, 4, feed=137, clock=StepClock(0))
    assert whole == pieces


def test_chunk_ms_sets_decision_rounds():
    events = run(FakeBackend(WORDS), AlignAtt(AlignAttOptions(threshold_ms=20)), 4, SessionOptions(chunk_ms=700), clock=StepClock(0))
    assert [(e.text, e.source_ms) for e in events if e.type == "commit"] == [
        (" one", 700),
        (" two three", 2100),
        (" four", 3500),
        (" five", 4000),
    ]


def test_catch_up_runs_one_round_for_the_chunks_that_waited():
    """A late feed of 3.5 chunks: one round at the last whole chunk instead of three; then rounds as before."""
    backend = FakeBackend(WORDS)
    session = Session(backend, AlignAtt(AlignAttOptions(threshold_ms=20)), SessionOptions(chunk_ms=700), StepClock(0))
    audio = timecoded(4000)
    session.feed_audio(audio[:2450], catch_up=True)
    assert [samples for samples, _, _ in backend.begun] == [2100]
    session.feed_audio(audio[2450:3000], catch_up=True)  # one chunk complete: the same round either way
    session.feed_audio(audio[3000:])
    session.feed_eof()
    assert [samples for samples, _, _ in backend.begun] == [2100, 2800, 3500, 4000]
    commits = [(e.text, e.source_ms) for e in session.events() if e.type == "commit"]
    assert commits == [(" one two three", 2100), (" four", 3500), (" five", 4000)]


def test_partials_show_the_provisional_tail():
    events = run(FakeBackend(WORDS), AlignAtt(AlignAttOptions(threshold_ms=20)), 2, SessionOptions(partials=True), clock=StepClock(0))
    assert [(e.type, e.text, e.source_ms) for e in events] == [
        ("commit", " one", 1000),
        ("partial", " two three four five", 1000),
        ("commit", " two three", 2000),
        ("partial", " four five", 2000),
        ("commit", " four five", 2000),
        ("final", "one two three four five", 2000),
    ]


def test_decoding_loop_is_cut_and_reported():
    words = [(w, 0) for w in ["the", "best", "view", "for"]]
    events = run(FakeBackend(words, loop_after=4), WaitK(WaitKOptions(k=1, stride_ms=100)), 1, clock=StepClock(0))
    assert events[-1] == End("the best view for view for view", source_ms=1000, compute_ms=0, elapsed_ms=1000)
    assert Guard("loop", source_ms=1000, compute_ms=0, elapsed_ms=1000) in events


def test_loops():
    assert loops([1, 2, 3, 2, 3, 2, 3])
    assert loops([5, 5, 5])
    assert not loops([1, 2, 3, 2, 3])
    assert not loops([1, 2, 3, 4, 5, 6])


def test_max_tokens_bounds_each_round():
    words = [(str(i), 0) for i in range(50)]
    events = run(FakeBackend(words), WaitK(WaitKOptions(k=1, stride_ms=100)), 1, SessionOptions(max_tokens=7), clock=StepClock(0))
    assert [e.text for e in events if e.type != "guard"] == [" 0 1 2 3 4 5 6", " 7 8 9 10 11 12 13", "0 1 2 3 4 5 6 7 8 9 10 11 12 13"]
    assert [e.reason for e in events if e.type == "guard"] == ["max_tokens", "max_tokens"]


def test_bad_audio_is_refused_and_loses_nothing():
    session = Session(FakeBackend(WORDS), AlignAtt(), SessionOptions(), StepClock(0))
    session.feed_audio(np.zeros(500, np.float32))
    with pytest.raises(AudioError, match="1-D float"):
        session.feed_audio(np.zeros((10, 2), np.float32))
    with pytest.raises(AudioError, match="1-D float"):
        session.feed_audio(np.zeros(10, np.int16))
    with pytest.raises(AudioError, match="NaN"):
        session.feed_audio(np.array([0.0, np.nan], np.float32))
    session.feed_audio(np.zeros(3500, np.float32))
    session.feed_eof()
    assert list(session.events())[-1].text == "one two three four five"
    with pytest.raises(SimulstError, match="after end"):
        session.feed_audio(np.zeros(10, np.float32))


def test_empty_input_ends_with_empty_text():
    session = Session(FakeBackend(WORDS), AlignAtt(), SessionOptions(), StepClock(0))
    session.feed_eof()
    assert list(session.events()) == [End("", source_ms=0, compute_ms=0, elapsed_ms=0)]


def test_invalid_chunk_size():
    with pytest.raises(SimulstError, match="chunk_ms"):
        Session(FakeBackend(WORDS), AlignAtt(), SessionOptions(chunk_ms=0))
    with pytest.raises(SimulstError, match="max_buffer_ms"):
        Session(FakeBackend(WORDS), AlignAtt(), SessionOptions(chunk_ms=1000, max_buffer_ms=1500))


def test_partial_event_types_are_distinct():
    assert Partial("a", 0, 0, 0).type == "partial" and Commit("a", 0, 0, 0).type == "commit" and End("", 0, 0, 0).type == "final"


def test_unfinished_words_are_held_back():
    words = [("in", 500), ("+cred", 500), ("+ible", 1500), ("news", 1600)]
    policy = AlignAtt(AlignAttOptions(threshold_ms=20))
    held = run(FakeBackend(words), policy, 2, SessionOptions(partials=True), clock=StepClock(0))
    assert [(e.type, e.text, e.source_ms) for e in held] == [
        ("partial", " incredible news", 1000),
        ("commit", " incredible news", 2000),
        ("final", "incredible news", 2000),
    ]
    split = run(FakeBackend(words), policy, 2, SessionOptions(whole_words=False), clock=StepClock(0))
    assert [(e.type, e.text, e.source_ms) for e in split] == [
        ("commit", " incred", 1000),
        ("commit", "ible news", 2000),
        ("final", "incredible news", 2000),
    ]


def test_history_is_bounded_on_long_streams():
    """Past max_buffer_ms, audio before the last committed word is dropped and earlier tokens become context."""
    words = [(f"w{i}", 500 + 1000 * i) for i in range(30)]  # one word a second, each heard half a second in
    backend = FakeBackend(words)
    events = run(backend, AlignAtt(AlignAttOptions(threshold_ms=20)), 30, SessionOptions(max_buffer_ms=5000), clock=StepClock(0))
    assert events[-1].text == " ".join(w for w, _ in words)
    assert max(samples for samples, _, _ in backend.begun) <= 5000 + 1000
    assert max(prefix for _, prefix, _ in backend.begun) <= 6
    assert max(context for _, _, context in backend.begun) > 20
    commits = [e for e in events if e.type == "commit"]
    assert all(e.source_ms - int(e.text.split()[-1][1:]) * 1000 <= 2000 for e in commits)


def test_speech_about_to_be_dropped_is_written_whatever_the_policy():
    """A policy that would write nothing before the end: past max_buffer_ms, the model's output for the audio
    the trim drops (the older half) is written anyway, so the buffer stays bounded and nothing is lost."""
    backend = FakeBackend(WORDS)
    events = run(backend, Offline(), 8, SessionOptions(max_buffer_ms=3000), clock=StepClock(0))
    # at 4 s the buffer is over 3 s: words heard before 2.5 s are forced out; "four" (3.2 s) goes at 5 s, "five" at 7 s
    assert [(e.text, e.source_ms) for e in events if e.type == "commit"] == [(" one two three", 4000), (" four", 5000), (" five", 7000)]
    assert events[-1].text == "one two three four five"
    assert max(samples for samples, _, _ in backend.begun) <= 3000 + 1000


def test_speech_the_model_leaves_out_is_dropped_with_a_guard_event():
    backend = FakeBackend([])  # hears speech (a hypothesis) but proposes nothing for it
    events = run(backend, Offline(), 8, SessionOptions(max_buffer_ms=3000), clock=StepClock(0))
    assert [(e.reason, e.source_ms) for e in events if e.type == "guard"] == [("overflow", 4000), ("overflow", 6000), ("overflow", 8000)]
    assert max(samples for samples, _, _ in backend.begun) <= 3000 + 1000


SENTENCES = [("one", 500), ("two.", 1500), ("three", 4500), ("four", 5500), ("five.", 6500)]


def test_text_the_model_ends_early_is_decoded_again_at_the_end():
    """A model that ends its text after a committed sentence although speech follows (Whisper may): at the end of
    input, when the voice detector hears enough speech after that text, the text becomes context and the audio
    after it is decoded again, with a ``restart`` guard event."""
    heard = []

    def speech(audio, rate):  # all of it is speech
        heard.append(len(audio))
        return len(audio) * 1000 / rate

    alignatt = AlignAtt(AlignAttOptions(threshold_ms=20))
    backend = FakeBackend(SENTENCES, ends_after=1)
    events = run(backend, alignatt, 7, clock=StepClock(0), voiced=speech)
    assert events[-1].text == "one two. three four five."
    assert [(e.reason, e.source_ms) for e in events if e.type == "guard"] == [("restart", 7000)]
    assert heard == [7000 - 1700]  # the audio after "two." (its attention peak + 200 ms), asked once
    assert backend.begun[-1] == (7000 - 1700, 0, 2)  # decoded with the text as context
    # the same model with silence after "two.", or with restarts off: its text ends there
    assert run(FakeBackend(SENTENCES, ends_after=1), alignatt, 7, voiced=lambda audio, rate: 0.0)[-1].text == "one two."
    assert run(FakeBackend(SENTENCES, ends_after=1), alignatt, 7, SessionOptions(restart_ms=0), voiced=speech)[-1].text == "one two."
    # speech shorter than restart_ms after the text: not asked
    heard.clear()
    assert run(FakeBackend(SENTENCES[:2], ends_after=1), alignatt, 3, voiced=speech)[-1].text == "one two."
    assert heard == []


def test_a_trim_keeps_the_audio_after_the_last_committed_word():
    """Past max_buffer_ms with one committed word only (no word start to cut at), the trim keeps the audio after
    that word (up to the limit), not just the last half of the buffer: the speech after it is not written yet."""
    script = [("one", 500), ("two.", 2000), ("three", 3000), ("four", 5500), ("five.", 6500)]
    backend = FakeBackend(script, ends_after=1)
    events = run(backend, AlignAtt(AlignAttOptions(threshold_ms=20)), 7, SessionOptions(max_buffer_ms=4000, restart_ms=0), clock=StepClock(0))
    # 5 s: "one" goes to context; 6 s: only "two." is left, the trim cuts 200 ms after its peak (2.2 s), where
    # cutting the buffer in half (at 4 s) would have dropped "three" (3 s) unwritten
    assert backend.begun[6] == (7000 - 2200, 0, 2)
    assert events[-1].text == "one two. three four five."
    assert not [e for e in events if e.type == "guard"]


def test_silence_is_dropped_from_the_buffer():
    heard = []

    class Silent:
        """Hears no speech, like Whisper's no-speech gate on silence: no hypothesis."""

        def begin(self, audio, prefix, final, context=()):
            heard.append(len(audio))

        def detokenize(self, tokens):
            return ""

    backend = FakeBackend(WORDS)
    backend.open = lambda options: Silent()
    events = run(backend, AlignAtt(), 10, SessionOptions(max_buffer_ms=3000), clock=StepClock(0))
    assert events[-1].text == "" and max(heard) <= 4000


class ScriptedVAD:
    """Speech flags by time: speech while ``start <= t < end`` for one of ``spans`` (ms), 100 ms windows."""

    def __init__(self, spans):
        self.spans, self.t = spans, 0

    def feed(self, samples):
        flags = []
        for _ in range(len(samples) // 100):
            flags.append(any(a <= self.t < b for a, b in self.spans))
            self.t += 100
        return flags


def test_vad_pause_writes_the_segment_and_restarts_history():
    words = [("one", 500), ("two", 1400), ("three", 5500)]
    backend = FakeBackend(words, stop_unheard=True)
    session = Session(backend, AlignAtt(AlignAttOptions(threshold_ms=600)), SessionOptions(vad_pause_ms=600), StepClock(0), ScriptedVAD([(0, 1700), (5000, 6000)]))
    session.feed_audio(timecoded(7000))
    session.feed_eof()
    events = list(session.events())
    commits = [(e.text, e.source_ms) for e in events if e.type == "commit"]
    # AlignAtt (60 frames) waits for "two" at 2 s; the pause (silence since 1.7 s) is seen at 3 s and writes it
    # out; the silence until 5 s costs no model call; "three" is written at the next pause
    assert commits == [(" one", 2000), (" two", 3000), (" three", 7000)]
    assert events[-1].text == "one two three"
    assert [samples for samples, _, _ in backend.begun] == [1000, 2000, 3000, 1000, 2000]  # history restarts at pauses
