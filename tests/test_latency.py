"""Our latency metrics equal SimulEval 1.1.4's scorers on the same instances, to 1e-6, except where SimulEval is wrong."""

import json
import random
from argparse import Namespace

import pytest
from simuleval.evaluator.instance import LogInstance
from simuleval.evaluator.scorers.latency_scorer import LATENCY_SCORERS_DICT

from simulst.eval import latency
from simulst.eval.scores import instance_latency, score

SHARED = ["AL", "LAAL", "AP", "DAL", "ATD", "StartOffset", "EndOffset", "NumChunks"]


def make_instances(seed: int, n: int = 12) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for index in range(n):
        source_length = rng.uniform(2000, 20000)
        words = rng.randint(1, 30)
        delays, t = [], rng.uniform(200, 3000)
        for _ in range(words):
            if rng.random() < 0.4:  # a new chunk
                t = min(source_length, t + rng.choice([300, 500, 1000, 1337.5]))
            delays.append(t)
        if rng.random() < 0.5:
            delays[-max(1, words // 3) :] = [source_length] * max(1, words // 3)  # the flush at end of input
        compute, elapsed = 0.0, []
        for i, d in enumerate(delays):
            if i == 0 or d != delays[i - 1]:
                compute += rng.uniform(10, 400)
            elapsed.append(d + compute)
        reference = " ".join(["w"] * rng.randint(1, 40))
        out.append(
            {
                "index": index,
                "prediction": " ".join(["w"] * words),
                "delays": delays,
                "elapsed": elapsed,
                "prediction_length": words,
                "reference": reference,
                "source": ["x.wav"],
                "source_length": source_length,
            }
        )
    return out


def simuleval_metric(name: str, instance: dict, computation_aware: bool) -> float:
    scorer = LATENCY_SCORERS_DICT[name](computation_aware=computation_aware, use_ref_len=True)
    return scorer({0: LogInstance(json.dumps(instance))})


@pytest.mark.parametrize("seed", range(4))
def test_every_shared_metric_equals_simuleval(seed):
    for instance in make_instances(seed):
        ours = instance_latency(instance)
        for name in SHARED:
            assert ours[name] == pytest.approx(simuleval_metric(name, instance, False), abs=1e-6), name
            if name != "NumChunks":
                assert ours[name + "_CA"] == pytest.approx(simuleval_metric(name, instance, True), abs=1e-6), name + "_CA"


def test_corpus_means_equal_simuleval():
    instances = make_instances(7)
    ours = score(instances)["overall"]
    logs = {i["index"]: LogInstance(json.dumps(i)) for i in instances}
    for name in ["AL", "LAAL", "DAL", "ATD"]:
        assert ours[name] == pytest.approx(LATENCY_SCORERS_DICT[name](computation_aware=False, use_ref_len=True)(logs), abs=1e-6)


def test_simuleval_reports_ca_values_as_plain_metrics():
    """SimulEval 1.1.4 issue #44: under --computation-aware, its "AL" column is built by ``from_args`` with
    computation_aware=True, so it equals AL_CA. Ours keeps AL computation-unaware."""
    instance = make_instances(3)[0]
    args = Namespace(computation_aware=True, no_use_ref_len=False)
    simuleval_al = LATENCY_SCORERS_DICT["AL"].from_args(args)({0: LogInstance(json.dumps(instance))})
    ours = instance_latency(instance)
    assert simuleval_al == pytest.approx(ours["AL_CA"], abs=1e-6)
    assert simuleval_al != pytest.approx(ours["AL"], abs=1e-3)
    assert ours["AL"] == pytest.approx(simuleval_metric("AL", instance, False), abs=1e-6)


def test_known_values():
    # wait-1 on 4 source words of 1 s, 4 target words: AL = mean(1000-0, 2000-1000, 3000-2000, 4000-3000) = 1000
    assert latency.al([1000, 2000, 3000, 4000], 4000, 4) == 1000
    # writing everything at the end: AL = source length (the first delay reaches it)
    assert latency.al([4000, 4000, 4000], 4000, 3) == 4000
    # LAAL uses the longer of hypothesis and reference: over-generation is not rewarded
    assert latency.laal([1000] * 8, 4000, 4) == pytest.approx(sum(1000 - i * 500 for i in range(8)) / 8)
    assert latency.start_offset([700, 900]) == 700 and latency.end_offset([700, 900], 1000) == -100


class SpeechOutput:
    """What SimulEval's ATD scorer reads from a speech-to-speech instance: delays, durations, elapsed."""

    def __init__(self, delays, durations, elapsed):
        self.delays, self.durations, self.elapsed = delays, durations, elapsed


@pytest.mark.parametrize("seed", range(6))
def test_speech_output_atd_equals_simuleval(seed):
    rng = random.Random(seed)
    for instance in make_instances(seed, 6):
        # each emission becomes a spoken segment; some share a delay (two segments emitted in one round)
        durations = [rng.choice([120.0, 300.0, 450.5, 900.0, 2000.0]) for _ in instance["delays"]]
        segment = SpeechOutput(instance["delays"], durations, instance["elapsed"])
        for aware in (False, True):
            expected = LATENCY_SCORERS_DICT["ATD"](computation_aware=aware)({0: segment})
            ours = latency.atd(segment.delays, instance["source_length"], segment.elapsed if aware else None, durations=durations)
            assert ours == pytest.approx(expected, abs=1e-6)
