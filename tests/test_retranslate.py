"""Re-translation: stabilisers on scripted hypotheses, the session's commits and revisions, and drafts verified
in one decoder pass giving exactly the tokens of step-by-step greedy decoding."""

import numpy as np
import pytest

from simulst.clock import StepClock
from simulst.errors import OptionError
from simulst.eval.instances import display
from simulst.events import Commit, End, Partial
from simulst.options import SessionOptions
from simulst.policies import Retranslate, RetranslateOptions
from simulst.session import Session
from tests.fake import FakeBackend, RoundsBackend
from tests.test_session import run

WORDS = [("one", 500), ("two", 1500), ("three", 2500), ("four", 3500)]


def test_mask_k_holds_back_the_last_k_tokens():
    stabiliser = Retranslate(RetranslateOptions(stabiliser="mask-k", k=2))
    assert stabiliser.stable([1, 2, 3, 4, 5]) == 3
    assert stabiliser.stable([1, 2]) == 0 and stabiliser.stable([]) == 0


def test_agreement_commits_the_prefix_the_last_hypotheses_share():
    stabiliser = Retranslate(RetranslateOptions(stabiliser="agreement", n=2))
    assert stabiliser.stable([1, 2, 3]) == 0  # no earlier hypothesis yet
    stabiliser.observe([], [1, 2, 3])
    assert stabiliser.stable([1, 2, 4, 5]) == 2
    stabiliser.observe([1, 2], [4, 5])  # the session committed 1 2: the history is now what follows them
    assert stabiliser.stable([4, 6]) == 1
    three = Retranslate(RetranslateOptions(stabiliser="agreement", n=3))
    three.observe([], [1, 2])
    assert three.stable([1, 2]) == 0  # n=3 needs two earlier hypotheses
    three.observe([], [1, 3])
    assert three.stable([1, 2]) == 1


def test_none_commits_nothing_before_the_end():
    assert Retranslate(RetranslateOptions(stabiliser="none")).stable([1, 2, 3]) == 0
    with pytest.raises(OptionError, match="n must be at least 2"):
        Retranslate(RetranslateOptions(n=1))


def test_mask_k_session_shows_the_hypothesis_and_commits_all_but_k():
    backend = FakeBackend(WORDS, stop_unheard=True)  # each round's hypothesis: the words heard so far
    events = run(backend, Retranslate(RetranslateOptions(k=1)), 4, clock=StepClock(0))
    shown = [(e.type, e.text, e.source_ms) for e in events if isinstance(e, (Commit, Partial))]
    assert shown == [
        ("partial", " one", 1000),
        ("commit", " one", 2000),
        ("partial", " two", 2000),
        ("commit", " two", 3000),
        ("partial", " three", 3000),
        ("commit", " three", 4000),
        ("partial", " four", 4000),
        ("commit", " four", 4000),  # end of input: everything is committed
    ]
    assert events[-1] == End("one two three four", 4000, 0, 4000)
    assert display(events) == (0, 0, [1000, 2000, 3000, 4000])  # first shown one round before committed


def test_raw_retranslation_revises_and_counts_erasure():
    script = ["the cat", "the dog sat", "a dog sat down", "a dog sat down"]
    events = run(RoundsBackend(script), Retranslate(RetranslateOptions(stabiliser="none")), 3, clock=StepClock(0))
    partials = [(e.text, e.source_ms) for e in events if isinstance(e, Partial)]
    assert partials == [(" the cat", 1000), (" the dog sat", 2000), (" a dog sat down", 3000)]
    assert [e.text for e in events if isinstance(e, Commit)] == [" a dog sat down"]
    # 1 s: "the cat"; 2 s: "cat" erased; 3 s: "the dog sat" erased (the first word changed)
    erased, revisions, delays = display(events)
    assert (erased, revisions) == (4, 2)
    assert delays == [3000, 3000, 3000, 3000]


def test_agreement_session_commits_what_two_rounds_share():
    script = ["a b c", "a b d", "a b d e", "a b d e"]
    events = run(RoundsBackend(script), Retranslate(RetranslateOptions(stabiliser="agreement")), 3, clock=StepClock(0))
    assert [(e.text, e.source_ms) for e in events if isinstance(e, Commit)] == [(" a b", 2000), (" d", 3000), (" e", 3000)]


def tiny_whisper():
    """A random two-layer Whisper decoder (float64) behind the attributes ``WhisperHypothesis`` reads."""
    import types
    from types import SimpleNamespace

    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from simulst.models.whisper import WhisperBackend

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=64, d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=40, max_target_positions=128, num_mel_bins=8,
        pad_token_id=59, bos_token_id=60, eos_token_id=59, decoder_start_token_id=60, attn_implementation="eager",
    )
    model = WhisperForConditionalGeneration(config).double().eval()
    mask = torch.zeros(64, dtype=torch.float64)
    mask[60:] = float("-inf")  # the prompt's tokens are never proposed
    backend = SimpleNamespace(
        model=model, sot=60, eot=59, no_speech=None, begin_mask=mask, mask=mask, heads=[(1, 0), (1, 1)],
        options=SimpleNamespace(alignment="normalized"), word_start=np.arange(64) % 3 == 0, ct2=None, device="cpu",
    )
    backend.decode_steps = types.MethodType(WhisperBackend.decode_steps, backend)
    encoded = torch.randn(1, 40, 32, dtype=torch.float64)
    return backend, encoded


def decode(backend, encoded, count, draft=()):
    from simulst.models.whisper import WhisperHypothesis

    hyp = WhisperHypothesis(backend, encoded, 40, [60, 61, 62], [])
    hyp.draft(list(draft))
    out = []
    for _ in range(count):
        candidate = hyp.propose()
        out.append((candidate.token, candidate.aligned_frame, round(candidate.logprob, 9)))
        hyp.accept(candidate)
    return out, hyp.steps


def test_a_verified_draft_gives_greedy_tokens_in_fewer_steps():
    backend, encoded = tiny_whisper()
    greedy, steps = decode(backend, encoded, 24)
    assert steps == 24
    tokens = [t for t, _, _ in greedy]
    same, one_pass = decode(backend, encoded, 24, tokens[:20])
    assert same == greedy and one_pass == 4  # one pass gives the first 21 tokens, 3 steps the rest
    replaced = tokens[:6] + [(tokens[6] + 1) % 59] + tokens[7:20]  # one draft token wrong: picked up after it
    out, steps = decode(backend, encoded, 24, replaced)
    assert out == greedy and steps <= 6  # the pass that feeds the right token checks the rest of the draft
    dropped = tokens[:5] + tokens[6:20]  # a token missing from the draft
    out, steps = decode(backend, encoded, 24, dropped)
    assert out == greedy and steps <= 6
    wrong = [(t + 7) % 59 for t in tokens[:20]]  # a useless draft costs nothing in tokens
    out, _ = decode(backend, encoded, 24, wrong)
    assert out == greedy


@pytest.mark.model
@pytest.mark.parametrize("name, stabiliser, ratio", [("de-000", "none", 2.0), ("es-001", "mask-k", 1.2)])
def test_whisper_retranslation_with_drafts_is_token_identical_in_fewer_steps(whisper_float32, name, stabiliser, ratio):
    """Raw re-translation decodes the whole segment again each round: the draft covers most of it. With mask-k
    the committed prefix is not decoded again and the new audio's tokens need their own steps. (float32 decoder:
    the attention of a draft's pass and of a step alone differ in the last bits, which bfloat16 inputs can round
    apart.)"""
    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    audio = load_audio(clip(name))
    runs = {}
    for draft in (False, True):
        options = SessionOptions(src_lang=name[:2], draft=draft)
        session = Session(whisper_float32, Retranslate(RetranslateOptions(stabiliser=stabiliser)), options, StepClock(0))
        session.feed_audio(audio)
        session.feed_eof()
        runs[draft] = [(e.type, e.text, e.source_ms) for e in session.events()], session.decoder_steps
    assert runs[True][0] == runs[False][0]
    assert any(kind == "partial" for kind, _, _ in runs[True][0]) and runs[True][0][-1][0] == "final"
    assert runs[True][1] * ratio <= runs[False][1], (runs[True][1], runs[False][1])
