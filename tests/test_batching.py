"""Cross-session batching: the batched decoder and encoder passes equal the solo ones, the batcher gathers the
calls of several threads, sessions batched give their solo output."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from simulst.models.batching import Batcher, run
from simulst.options import SessionOptions
from simulst.policies.alignatt import AlignAtt, AlignAttOptions
from simulst.policies.waitk import WaitK, WaitKOptions
from simulst.session import Session
from tests.fake import FakeBackend, timecoded
from tests.test_retranslate import tiny_whisper


def hf_decoder(backend, encoded, ids):
    """transformers' own decoder over ``ids`` in one pass: last hidden states and the chosen heads' attention."""
    import torch

    model = backend.model
    with torch.inference_mode():
        out = model.model.decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=encoded, output_attentions=True)
        cross = torch.stack([out.cross_attentions[layer][0, head] for layer, head in backend.heads])
        return model.proj_out(out.last_hidden_state[0]), cross


def test_decoder_pass_equals_transformers_and_keeps_its_cache():
    import torch

    from simulst.models.whisper_decoder import DecoderCache, Step, decode

    backend, encoded = tiny_whisper()
    ids = [60, 61, 62, 5, 9, 14, 3]
    logits, cross = hf_decoder(backend, encoded, ids)
    cache = DecoderCache(encoded)
    first = Step(ids[:4], cache, [0, 1, 2, 3])
    decode(backend.model, [first], backend.heads)
    assert torch.allclose(first.logits, logits[:4], atol=1e-10) and torch.allclose(first.cross, cross[:, :4], atol=1e-12)
    for i in range(4, 7):  # token by token on the cache
        step = Step([ids[i]], cache, [0])
        decode(backend.model, [step], backend.heads)
        assert torch.allclose(step.logits[0], logits[i], atol=1e-10) and torch.allclose(step.cross[:, 0], cross[:, i], atol=1e-12)
    cache.crop(5)
    step = Step(ids[5:], cache, [0, 1])
    decode(backend.model, [step], backend.heads)
    assert cache.length == 7 and torch.allclose(step.logits, logits[5:], atol=1e-10)


def test_batched_decoder_pass_equals_each_hypothesis_alone():
    """Prompts, cached prefixes and encodings of different lengths in one pass."""
    import torch

    from simulst.models.whisper_decoder import DecoderCache, Step, decode

    backend, encoded = tiny_whisper()
    torch.manual_seed(1)
    encodings = [encoded, torch.randn(1, 25, 32, dtype=torch.float64), torch.randn(1, 33, 32, dtype=torch.float64)]
    feeds = [([60, 61, 62], [7]), ([60, 61, 62, 4, 8, 15], [2, 3, 9]), ([60, 62], [11])]
    solo, batched = [], []
    for encoding, (first, second) in zip(encodings, feeds):
        cache = DecoderCache(encoding)
        decode(backend.model, [Step(first, cache, [len(first) - 1])], backend.heads)
        step = Step(second, cache, list(range(len(second))))
        decode(backend.model, [step], backend.heads)
        solo.append(step)
    caches = [DecoderCache(e) for e in encodings]
    decode(backend.model, [Step(first, c, [len(first) - 1]) for c, (first, _) in zip(caches, feeds)], backend.heads)
    batched = [Step(second, c, list(range(len(second)))) for c, (_, second) in zip(caches, feeds)]
    decode(backend.model, batched, backend.heads)
    for alone, together in zip(solo, batched):
        assert together.cross.shape == alone.cross.shape
        assert torch.allclose(together.logits, alone.logits, atol=1e-10)
        assert torch.allclose(together.cross, alone.cross, atol=1e-12)
        assert torch.allclose(together.hidden, alone.hidden, atol=1e-10)


def test_batched_encoder_pass_equals_each_buffer_alone():
    """Buffers of about the same length share a pass (odd and even mel lengths: padding masked, the convolutions'
    edges as alone); others are encoded alone."""
    import types

    import torch

    from simulst.models.whisper import WhisperBackend

    backend, _ = tiny_whisper()
    backend.log_mel = lambda mel: torch.from_numpy(mel)[None]  # the tiny model takes its 8 mel bins as "audio"
    backend._encode = types.MethodType(WhisperBackend._encode, backend)
    encode = types.MethodType(WhisperBackend.encode_batch, backend)
    rng = np.random.default_rng(0)
    mels = [rng.standard_normal((8, n)) for n in (80, 51, 66, 79, 78)]
    passes = []
    backend._encode = lambda group, inner=backend._encode: passes.append(len(group)) or inner(group)
    together = encode(mels)
    assert sorted(passes) == [1, 1, 3]  # 78-80 frames in one pass, 51 and 66 each alone
    for mel, batched in zip(mels, together):
        alone = encode([mel])[0]
        assert batched.shape == alone.shape == (1, -(-mel.shape[1] // 2), 32)
        assert torch.allclose(batched, alone, atol=1e-10)


def together(count: int, work, batcher: Batcher) -> list:
    """``work(i)`` on ``count`` threads routed to ``batcher``, started once all serve; their results in order."""
    results = [None] * count
    gate = threading.Barrier(count)

    def thread(i: int) -> None:
        with batcher.serving():
            gate.wait()
            results[i] = work(i)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:  # a loaded machine may take minutes over the model's work: only a hang fails
        t.join(600)
        assert not t.is_alive(), "a batched thread hung"
    return results


def test_batcher_runs_the_waiting_calls_of_all_threads_as_one_batch():
    sizes = []

    def square(items):
        sizes.append(len(items))
        return [x * x for x in items]

    batcher = Batcher(max_wait_s=5.0)  # a batch waits for every serving thread: the timeout never decides here
    try:
        results = together(4, lambda i: [run(square, 10 * i + k) for k in range(5)], batcher)
    finally:
        batcher.close()
    assert results == [[(10 * i + k) ** 2 for k in range(5)] for i in range(4)]
    assert sizes == [4] * 5
    assert run(square, 3) == 9 and sizes[-1] == 1  # an unrouted thread runs its call itself


def test_a_failing_call_fails_alone_and_a_thread_that_leaves_is_not_waited_for():
    def checked(items):
        if 13 in items:
            raise ValueError("unlucky")
        return [-x for x in items]

    def work(i):
        if i == 2:
            return "left"  # serves, makes no call and leaves: the others must not wait for it
        try:
            return run(checked, 13 if i == 1 else i)
        except ValueError as exc:
            return str(exc)

    batcher = Batcher(max_wait_s=5.0)
    try:
        results = together(4, work, batcher)
    finally:
        batcher.close()
    assert results == [0, "unlucky", "left", -3]


def test_an_aside_call_runs_on_its_own_thread_and_batches_do_not_wait_for_it():
    """Thread 0 is inside an aside call until thread 1's batched calls are done: were the batches waiting for
    every serving thread (aside or not), they would wait for the 5 s timeout at each call."""
    batched_done = threading.Event()
    ran_on = {}

    def slow(items):
        ran_on["aside"] = threading.get_ident()
        assert batched_done.wait(10)
        return [x + 1 for x in items]

    def work(i):
        if i == 0:
            ran_on["caller"] = threading.get_ident()
            return run(slow, 41, aside=True)
        results = [run(lambda items: [-x for x in items], k) for k in range(3)]
        batched_done.set()
        return results

    batcher = Batcher(max_wait_s=5.0)
    began = time.monotonic()
    try:
        results = together(2, work, batcher)
    finally:
        batcher.close()
    assert results == [42, [0, -1, -2]]
    assert time.monotonic() - began < 4.0
    assert ran_on["aside"] == ran_on["caller"]
    assert run(slow, 1, aside=True) == 2  # unrouted: the same call, run by the caller


def scripted_sessions():
    """Three sessions of different policies and lengths over one scripted model."""
    words = [("eins", 300), ("zwei", 900), ("+drei", 1500), ("vier", 2600), ("fünf", 3100), ("sechs", 3900)]
    backend = FakeBackend(words, tail_attention=0.3, batched=True)
    policies = [WaitK(WaitKOptions(k=1, stride_ms=500)), AlignAtt(AlignAttOptions(threshold_ms=200)), WaitK(WaitKOptions(k=2, stride_ms=700))]
    lengths = [4200, 3300, 4700]
    return backend, policies, lengths


def run_session(backend, policy, samples: int) -> list:
    session = Session(backend, policy, SessionOptions(chunk_ms=300))
    audio = timecoded(samples)
    for i in range(0, samples, 100):
        session.feed_audio(audio[i : i + 100])
    session.feed_eof()
    return [(e.type, e.text, e.source_ms) for e in session.events()]


def test_sessions_batched_give_the_tokens_and_decisions_they_give_alone():
    backend, policies, lengths = scripted_sessions()
    solo = [run_session(backend, p, n) for p, n in zip(policies, lengths)]
    assert set(backend.batches) == {1}
    backend, policies, lengths = scripted_sessions()
    batcher = Batcher(max_wait_s=5.0)
    try:
        batched = together(3, lambda i: run_session(backend, policies[i], lengths[i]), batcher)
    finally:
        batcher.close()
    assert batched == solo
    assert max(backend.batches) == 3 and 1 in backend.batches  # together while all run, alone once two are done
    assert all(any(kind == "commit" for kind, _, _ in events) for events in solo)


@pytest.mark.model
def test_two_whisper_sessions_batched_give_their_outputs_alone(whisper_base):
    """Two dev clips of different lengths and languages: decoder passes batched while both run, CTranslate2's
    encoder passes aside (on a server's two workers, beside the batches)."""
    from simulst.clock import StepClock
    from simulst.models.whisper_load import load_whisper
    from simulst.build import SERVED_ENCODER_WORKERS, usable_cores
    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    clips = [(load_audio(clip(name)), name[:2]) for name in ("de-000", "es-001")]

    def run_clip(i: int) -> list:
        audio, lang = clips[i]
        session = Session(whisper_base, AlignAtt(AlignAttOptions()), SessionOptions(src_lang=lang), StepClock(0))
        for start in range(0, len(audio), 1600):
            session.feed_audio(audio[start : start + 1600])
        session.feed_eof()
        return [(e.type, e.text, e.source_ms) for e in session.events()]

    solo = [run_clip(i) for i in range(2)]
    served = load_whisper("whisper-base").ctranslate2("float32", usable_cores(), SERVED_ENCODER_WORKERS)
    alone_encoder, whisper_base.ct2 = whisper_base.ct2, served  # as a server's backend: two encoder workers
    batcher = Batcher()
    try:
        batched = together(2, run_clip, batcher)
    finally:
        batcher.close()
        whisper_base.ct2 = alone_encoder
    assert batched == solo
    assert batcher.items["decode_steps"] > batcher.batches["decode_steps"]  # some steps of the two ran as one
    assert not batcher.items["encode_batch"] and whisper_base.ct2 is not None
    assert "Hong Kong" in solo[0][-1][1]


@pytest.mark.model
def test_round_profile_parts_add_up(whisper_base):
    from simulst import build
    from simulst.streaming.audio import load_audio
    from simulst.streaming.profile import PARTS, profile_rounds
    from tests.conftest import clip

    audio = load_audio(clip("de-001"))[: 16000 * 4]
    report = profile_rounds(whisper_base, lambda: Session(whisper_base, build.policy("alignatt", {}), SessionOptions(src_lang="de")), [audio], 16000)
    parts = report["parts"]
    assert list(parts) == PARTS and report["rounds"] == 5
    assert parts["encoder"][0] > 0 and parts["mel"][0] > 0 and parts["prefix feed"][1] >= 4
    assert sum(seconds for seconds, _ in parts.values()) == pytest.approx(report["round_s"])
