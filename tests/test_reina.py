"""REINA and the learned-policy foundation: the loss, NoSE, head files and their checks, features, training."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from simulst.errors import OptionError
from simulst.eval.nose import nose
from simulst.models.base import Candidate
from simulst.policies.base import Action, StateView
from simulst.cards import save
from simulst.policies.learned import SCALARS, head_net, load_head
from simulst.policies.reina import Reina, ReinaOptions
from simulst.training.losses import information_gain, reina_loss
from tests.fake import FakeBackend


def test_information_gain_is_clamped_at_zero():
    assert information_gain(torch.tensor([-0.1, -2.0]), torch.tensor([-1.1, -1.0])).tolist() == pytest.approx([1.0, 0.0])


def test_reina_loss_by_hand():
    # pi = 0.5 everywhere: E[0.5 * IG + 0.5 * alpha] - beta * ln 2
    logits, gain = torch.zeros(2), torch.tensor([0.0, 1.0])
    expected = (0.5 * 0 + 0.5 * 0.5 + 0.5 * 1 + 0.5 * 0.5) / 2 - 0.25 * math.log(2)
    assert float(reina_loss(logits, gain, alpha=0.5, beta=0.25)) == pytest.approx(expected)
    # a write probability that falls from the shorter to the longer truncation is penalized by the drop
    logits = torch.tensor([2.0, -2.0])
    drop = float(torch.sigmoid(torch.tensor(2.0)) - torch.sigmoid(torch.tensor(-2.0)))
    plain = float(reina_loss(logits, gain, 0.5, 0.25))
    assert float(reina_loss(logits, gain, 0.5, 0.25, torch.tensor([[0, 1]]), monotonic=2.0)) == pytest.approx(plain + 2.0 * drop)
    assert float(reina_loss(logits, gain, 0.5, 0.25, torch.tensor([[1, 0]]), monotonic=2.0)) == pytest.approx(plain)


def test_reina_loss_optimum_is_a_soft_threshold_on_the_gain():
    """Per sample, the loss is minimized by logit = (alpha - IG) / beta: write when the audio adds < alpha."""
    gain = torch.tensor([0.0, 0.2, 0.5, 1.0, 2.0])
    logits = torch.zeros(5, requires_grad=True)
    optimizer = torch.optim.LBFGS([logits], max_iter=100)

    def closure():
        optimizer.zero_grad()
        loss = reina_loss(logits, gain, 0.5, 0.25)
        loss.backward()
        return loss

    optimizer.step(closure)
    assert logits.detach().tolist() == pytest.approx(((0.5 - gain) / 0.25).tolist(), abs=1e-2)


def test_nose_by_hand():
    # 0 until 1 s, half the offline BLEU until 2 s, all of it after: (0.5 * 1000 + 1.0 * 2000) / 4000
    assert nose([(1000, 5.0), (2000, 10.0)], 10.0, 4000) == pytest.approx(0.625)
    assert nose([(2000, 10.0), (1000, 5.0), (3000, 8.0)], 10.0, 4000) == pytest.approx(0.625)  # order, dominated points
    assert nose([(500, 12.0)], 10.0, 4000) == pytest.approx(3500 / 4000)  # capped at the offline quality
    assert nose([(5000, 10.0)], 10.0, 4000) == 0.0


def _head(tmp_path, **card):
    torch.manual_seed(0)
    net = head_net(8, 4)
    defaults = {"policy": "reina", "model": "fake", "features": "whisper-hidden+8-v1", "hidden_dim": 8, "width": 4}
    return save(net, {**defaults, **card}, tmp_path / "reina-test")


def _view(hidden, logprob=-0.1):
    candidate = Candidate(5, True, False, np.full(50, 0.02), logprob, 1.0, hidden)
    return StateView(candidate, 2000, 50, 20.0, 3, 0, 3)


def test_a_head_decides_deterministically_and_by_threshold(tmp_path):
    card = _head(tmp_path)
    hidden = np.linspace(-1, 1, 8, dtype=np.float32)
    loose, strict = Reina(ReinaOptions(threshold=0.0, head=str(card))), Reina(ReinaOptions(threshold=1.0, head=str(card)))
    loose.bind(FakeBackend([]))
    assert loose.decide(_view(hidden)) is Action.WRITE and strict.decide(_view(hidden)) is Action.READ
    p = loose.head.write_probability(hidden, np.zeros(len(SCALARS), np.float32))
    assert 0 < p < 1 and p == loose.head.write_probability(hidden, np.zeros(len(SCALARS), np.float32))


def test_the_threshold_defaults_to_the_one_in_the_head_card(tmp_path):
    assert Reina(ReinaOptions(head=str(_head(tmp_path)))).threshold == 0.5  # a card without one
    card = str(_head(tmp_path, threshold=0.7))
    assert Reina(ReinaOptions(head=card)).threshold == 0.7 and Reina(ReinaOptions(head=card, threshold=0.2)).threshold == 0.2


def test_the_attention_veto_reads_while_the_token_attends_the_end_of_the_audio(tmp_path):
    """With ``attention_ms`` a head that would write waits while the token's peak is that close to the end."""
    card = str(_head(tmp_path))
    hidden = np.linspace(-1, 1, 8, dtype=np.float32)

    def at(frame):  # 50 frames of 20 ms: the peak ``(50 - frame) * 20`` ms before the end
        attention = np.full(50, 0.01)
        attention[frame] = 0.6
        return StateView(Candidate(5, True, False, attention, -0.1, 1.0, hidden), 1000, 50, 20.0, 3, 0, 3)

    vetoed = Reina(ReinaOptions(threshold=0.0, head=card, attention_ms=200))
    assert vetoed.decide(at(40)) is Action.READ  # 200 ms before the end
    assert vetoed.decide(at(39)) is Action.WRITE  # 220 ms
    assert Reina(ReinaOptions(threshold=0.0, head=card)).decide(at(49)) is Action.WRITE  # no veto by default
    from_card = str(_head(tmp_path, attention_ms=300))
    assert Reina(ReinaOptions(head=from_card)).attention_ms == 300 and Reina(ReinaOptions(head=from_card, attention_ms=0)).attention_ms == 0


def test_a_head_for_another_model_policy_or_feature_set_is_refused(tmp_path):
    other_model = Reina(ReinaOptions(head=str(_head(tmp_path, model="whisper-small"))))
    with pytest.raises(OptionError, match="trained for model 'whisper-small'"):
        other_model.bind(FakeBackend([]))
    with pytest.raises(OptionError, match="has policy 'dar', not 'reina'"):
        Reina(ReinaOptions(head=str(_head(tmp_path, policy="dar"))))
    with pytest.raises(OptionError, match="retrain"):
        Reina(ReinaOptions(head=str(_head(tmp_path, features="old"))))
    with pytest.raises(OptionError, match="no head"):
        Reina(ReinaOptions(head="no-such-head"))
    card = json.loads(_head(tmp_path).read_text())
    assert card["model"] == "fake" and (tmp_path / "reina-test.pt").exists()


def test_a_learned_policy_refuses_a_backend_without_hidden_states(tmp_path):
    policy = Reina(ReinaOptions(head=str(_head(tmp_path))))
    view = _view(None)
    with pytest.raises(OptionError, match="hidden state"):
        policy.decide(view)


def _stepped_like_cached(backend, stream, data, audio, context=()) -> int:
    """Check cached features against the session stepping the model over the same audio, prefix and context;
    returns how many (cut, token) points were checked."""
    from simulst.policies.learned import view_features

    tokens = data["tokens"].tolist()
    checked = 0
    for c, cut_ms in enumerate(data["cuts_ms"]):
        for t in (1, 4, len(tokens) - 1):
            hyp = stream.begin(audio[: int(cut_ms * 16)], tokens[:t], False, context)
            candidate = hyp.propose()
            hidden, values = view_features(StateView(candidate, cut_ms, hyp.frames, backend.frame_ms, 0, 0, t))
            assert np.allclose(hidden, data["hidden"][c, t].astype(np.float32), rtol=2e-3, atol=5e-3)  # stored as float16
            assert np.allclose(values, data["scalars"][c, t], atol=1e-3)
            target = hyp.propose(banned=set(range(backend.eot + 1)) - {tokens[t]})
            assert target.logprob == pytest.approx(float(data["partial"][c, t]), abs=1e-3)
            checked += 1
    final = stream.begin(audio, tokens[:2], True, context).propose()
    assert final.token == tokens[2] and final.logprob == pytest.approx(float(data["full"][2]), abs=1e-3)
    return checked


@pytest.mark.model
def test_cached_features_equal_a_direct_model_call(whisper_float32, tmp_path):
    """What training reads (one teacher-forced pass per truncation, cached) is what the policy sees when the
    session steps the model token by token over the same audio and prefix (float32 decoder)."""
    from simulst.training.teacher import cache_features
    from simulst.options import SessionOptions
    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    backend = whisper_float32
    options = SessionOptions(src_lang="de")
    (path,) = cache_features(backend, [("de-001", clip("de-001"), options)], tmp_path, step_ms=4000)
    assert _stepped_like_cached(backend, backend.open(options), np.load(path), load_audio(clip("de-001"))) >= 6


@pytest.mark.model
def test_features_after_a_trim_are_those_of_the_resumed_session(whisper_float32, tmp_path):
    """``--resume``: an utterance as a session holds it after trimming its history (from a word the model starts
    past the middle, its words before as the text context); what training reads is what the session sees then."""
    from simulst.training.teacher import cache_features, offline_tokens, resumed
    from simulst.options import SessionOptions
    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    backend = whisper_float32
    options = SessionOptions(src_lang="de")
    audio, stream = load_audio(clip("de-001")), backend.open(options)
    whole, _ = offline_tokens(backend, stream, audio, options)
    part, context = resumed(backend, stream, audio, options, 0.5)
    assert 0 < len(part) <= len(audio) / 2 + backend.sample_rate // 5 and np.array_equal(part, audio[len(audio) - len(part) :])
    assert 0 < len(context) < len(whole) and context == whole[: len(context)] and stream.detokenize(whole[len(context) : len(context) + 1]).startswith(" ")
    (path,) = cache_features(backend, [("de-001", clip("de-001"), options)], tmp_path, step_ms=1000, resume=0.5)
    data = np.load(path)
    assert data["duration_ms"] == pytest.approx(len(part) / 16)
    assert _stepped_like_cached(backend, stream, data, part, context) >= 6
    (plain,) = cache_features(backend, [("de-001", clip("de-001"), options)], tmp_path, step_ms=1000)
    assert plain != path  # the trimmed utterance is cached apart from the whole one


@pytest.mark.model
def test_training_runs_end_to_end_on_a_tiny_set(whisper_base, tmp_path):
    from simulst.training.policy import TrainOptions, load_samples, losses, train_head, train_policy
    from tests.conftest import LIBRITRANS, clip

    training = tmp_path / "train.tsv"  # the training set's format: untranscribed speech in a language
    training.write_text(f"id\taudio\tduration\tlang\tlicence\ncv-de\t{clip('de-000')}\t5\tde\tCC0-1.0\n")
    options = TrainOptions(synthetic=1, limit=3, step_ms=1000, epochs=2, resume=0.5, attention_ms=200)
    card_path = train_policy("reina", [str(training), str(LIBRITRANS)], tmp_path, options, whisper_base)
    card = json.loads(card_path.read_text())
    assert card["model"] == whisper_base.identity and card["numerics"] == whisper_base.numerics and card["data"]["samples"] > 0
    assert 1 <= card["data"]["resumed"] <= card["data"]["utterances"] and card["training"]["resume"] == 0.5
    assert {"de-en synthetic", "de-en real", "en-en real"} <= set(card["data"]["by_source"])
    assert card["data"]["by_source"]["de-en real"]["licences"] == ["CC0-1.0"]
    assert len(card["training"]["report"]["epochs"]) == 2 and card["threshold"] == 0.5 and card["attention_ms"] == 200
    load_head(str(card_path), "reina").check_backend(whisper_base)
    assert Reina(ReinaOptions(head=str(card_path))).attention_ms == 200

    # fine-tuning: a DAR head started from that REINA head, on the cached features (nothing is computed again)
    tuned_card = json.loads(train_policy("dar", [str(training), str(LIBRITRANS)], tmp_path, dataclasses.replace(options, init=str(card_path), epochs=1), whisper_base).read_text())
    assert tuned_card["training"]["init"] == str(card_path) and tuned_card["data"]["samples"] == card["data"]["samples"]
    samples = load_samples([p for p in sorted((tmp_path / "features").glob("*.npz")) if not np.load(p)["empty"]])  # as cache_features gives them
    start = load_head(str(card_path)).net
    before = [p.detach().clone() for p in start.parameters()]
    loss = losses["dar"](samples, options)
    still, _ = train_head(samples, loss, epochs=1, lr=0.0, start=start)  # no step: the start head itself, copied
    moved, _ = train_head(samples, loss, epochs=1, start=start)
    fresh, _ = train_head(samples, loss, epochs=1, lr=0.0, seed=1)
    assert still is not start and all(torch.equal(a, b) for a, b in zip(still.parameters(), before))
    assert all(torch.equal(a, b) for a, b in zip(start.parameters(), before))  # fine-tuning leaves the start head alone
    assert not all(torch.equal(a, b) for a, b in zip(moved.parameters(), before))
    assert not all(torch.equal(a, b) for a, b in zip(fresh.parameters(), before))


@pytest.mark.model
@pytest.mark.parametrize("policy,head", [("reina", None), ("reina", "reina-whisper-base"), ("dar", None), ("dar", "dar-whisper-base")])
def test_the_shipped_head_translates_a_clip_the_same_way_twice(whisper_base, policy, head):
    from simulst import build
    from simulst.options import SessionOptions
    from simulst.streaming.audio import load_audio
    from tests.conftest import clip

    audio = load_audio(clip("es-002"))
    runs = []
    for _ in range(2):
        session = build.session(whisper_base, build.policy(policy, {"head": head} if head else None), SessionOptions(src_lang="es"))
        for start in range(0, len(audio), 16000):
            session.feed_audio(audio[start : start + 16000])
        session.feed_eof()
        runs.append([(e.type, e.text, e.source_ms) for e in session.events() if e.type in ("commit", "final")])
    assert runs[0] == runs[1]
    assert len([e for e in runs[0] if e[0] == "commit"]) >= 2 and len(runs[0][-1][1].split()) >= 10
