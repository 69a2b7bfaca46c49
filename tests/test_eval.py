"""simulst eval / score on a scripted fake model: files, fields, per-direction scores, recomputation."""

import json

import numpy as np
import pytest
import soundfile

from simulst.cli import main
from simulst.errors import OptionError, SimulstError
from simulst.eval.data import read_tsv
from simulst.eval.instances import word_delays
from simulst.eval.run import evaluate
from simulst.events import Commit, End
from simulst.options import SessionOptions
from simulst.policies import WaitK, WaitKOptions
from simulst.session import Session
from tests.fake import FakeBackend, FakeStream

WORDS = [("the", 0), ("cat", 0), ("sat", 0), ("+s", 0), ("down", 0)]


class EnglishOnly(FakeBackend):
    def open(self, options: SessionOptions) -> FakeStream:
        if options.tgt_lang != "en":
            raise OptionError(f"fake model: no {options.tgt_lang}")
        return super().open(options)


def waitk_sessions(backend):
    return lambda options: Session(backend, WaitK(WaitKOptions(k=1, stride_ms=1000)), options)


@pytest.fixture
def data(tmp_path):
    (tmp_path / "audio").mkdir()
    lines = ["id\taudio\tduration\tsrc_lang\ttgt_lang\tsource\treference"]
    for i, (src, tgt, seconds) in enumerate([("de", "en", 3.0), ("fr", "en", 2.0), ("en", "de", 2.0)]):
        soundfile.write(tmp_path / "audio" / f"{i}.wav", np.zeros(int(16000 * seconds)), 16000)
        lines.append(f"row{i}\taudio/{i}.wav\t{seconds}\t{src}\t{tgt}\tdie Katze\tthe cat sat down")
    (tmp_path / "data.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path / "data.tsv"


def test_word_delays_follow_the_commit_that_completed_each_word():
    events = [Commit(" the ca", 1000, 5, 1005), Commit("t sat", 2000, 5, 2010), Commit(" down", 3000, 5, 3015), End("", 3000, 0, 3015)]
    assert word_delays(events) == (["the", "cat", "sat", "down"], [1000, 2000, 2000, 3000], [1005, 2010, 2010, 3015])


def test_eval_writes_logs_and_scores(data, tmp_path, capsys):
    backend = EnglishOnly(WORDS, sample_rate=16000)
    scores = evaluate(read_tsv(data), backend, waitk_sessions(backend), SessionOptions(), tmp_path / "out", computation_aware=True, progress=None)
    log = [json.loads(line) for line in (tmp_path / "out" / "instances.log").read_text().splitlines()]
    assert [i["id"] for i in log] == ["row0", "row1"]  # en-de is skipped: the model cannot do it
    assert "en-de" in scores["skipped"]
    first = log[0]
    assert first["prediction"] == "the cat sats down"
    assert first["delays"] == [1000, 2000, 3000, 3000]
    assert first["source_length"] == 3000 and first["reference"] == "the cat sat down"
    assert set(first) >= {"index", "prediction", "delays", "elapsed", "prediction_length", "reference", "source", "source_length"}
    assert set(scores["by_direction"]) == {"de-en", "fr-en"}
    assert scores["overall"]["StartOffset"] == 1000
    header, values = (tmp_path / "out" / "scores.tsv").read_text().splitlines()
    assert header.split("\t")[:6] == ["BLEU", "LAAL", "AL", "AP", "DAL", "ATD"] and "LAAL_CA" in header
    # score recomputes the same numbers from the log
    assert main(["score", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["overall"] == scores["overall"]
    assert "direction" in capsys.readouterr().out


def test_no_runnable_rows(data, tmp_path):
    rows = [r for r in read_tsv(data) if r.tgt_lang == "de"]
    backend = EnglishOnly(WORDS, sample_rate=16000)
    with pytest.raises(SimulstError, match="no row can be run"):
        evaluate(rows, backend, waitk_sessions(backend), SessionOptions(), tmp_path / "o", progress=None)


def test_bad_data_file(tmp_path):
    (tmp_path / "bad.tsv").write_text("id\taudio\n1\tx.wav\n")
    with pytest.raises(SimulstError, match="missing column"):
        read_tsv(tmp_path / "bad.tsv")
    assert main(["score", str(tmp_path / "nothing")]) == 2


def test_sweep_and_plot(data, tmp_path, monkeypatch, capsys):
    """A sweep over a policy option writes one run per point; plot draws the curve and timelines."""
    from simulst import build

    monkeypatch.setattr(build, "model", lambda spec: EnglishOnly(WORDS, sample_rate=16000))
    out = tmp_path / "sweep"
    code = main(["eval", "--data", str(data), "--output", str(out), "--policy", "waitk", "--sweep", "waitk.k=1,2", "--directions", "de-en"])
    assert code == 0
    k1 = json.loads((out / "waitk.k=1" / "scores.json").read_text())["overall"]
    k2 = json.loads((out / "waitk.k=2" / "scores.json").read_text())["overall"]
    assert k2["AL"] > k1["AL"]  # more lag with larger k
    assert (out / "sweep.tsv").read_text().splitlines()[0].startswith("point\tBLEU")
    assert main(["plot", str(out), "--output", str(tmp_path / "plots")]) == 0
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"latency-quality.png", "latency-quality.svg", "timeline-waitk.k=1-row0.png"} <= names
    assert (tmp_path / "plots" / "latency-quality.png").stat().st_size > 5000
    assert main(["eval", "--data", str(data), "--output", str(out), "--sweep", "nonsense=1"]) == 2
    assert "--sweep takes KEY=V1,V2" in capsys.readouterr().err


def test_compare_runs_each_system_and_tabulates_them(data, tmp_path, monkeypatch, capsys):
    from simulst import build

    monkeypatch.setattr(build, "model", lambda spec: EnglishOnly(WORDS, sample_rate=16000))
    out = tmp_path / "compare"
    systems = ["wk=--policy waitk", "rt=--policy retranslate --retranslate-k 1", "raw=--policy retranslate --retranslate-stabiliser none"]
    assert main(["eval", "--data", str(data), "--output", str(out), "--directions", "de-en", "--compare", *systems]) == 0
    header, *rows = (out / "compare.tsv").read_text().splitlines()
    assert header.split("\t")[:2] == ["point", "BLEU"] and {"NE", "DisplayLAAL", "UpdateMs_p95", "DecoderSteps"} <= set(header.split("\t"))
    assert [r.split("\t")[0] for r in rows] == ["wk", "rt", "raw"]
    scores = {name: json.loads((out / name / "scores.json").read_text())["overall"] for name in ("wk", "rt", "raw")}
    assert scores["raw"]["LAAL"] >= scores["rt"]["LAAL"]  # raw re-translation commits only at the end
    assert scores["raw"]["DisplayLAAL"] < scores["raw"]["LAAL"]  # ... but shows words before that
    assert main(["eval", "--data", str(data), "--output", str(out), "--compare", "broken"]) == 2
    assert "--compare takes NAME=FLAGS" in capsys.readouterr().err


def test_eval_reads_several_data_files_in_order(data, tmp_path, monkeypatch):
    from simulst import build

    monkeypatch.setattr(build, "backend", lambda *a, **k: EnglishOnly(WORDS, sample_rate=16000))
    other = tmp_path / "other"
    other.mkdir()
    (other / "audio").symlink_to(tmp_path / "audio")
    (other / "more.tsv").write_text(data.read_text().replace("row", "more"))
    out = tmp_path / "both"
    assert main(["eval", "--data", str(data), str(other / "more.tsv"), "--output", str(out), "--policy", "waitk", "--directions", "de-en"]) == 0
    log = [json.loads(line) for line in (out / "instances.log").read_text().splitlines()]
    assert [i["id"] for i in log] == ["row0", "more0"]


def test_long_form_stream_is_resegmented_and_scored(tmp_path):
    """A NAME.segments.tsv stream: one instance, BLEU after resegmentation, StreamLAAL per sentence."""
    soundfile.write(tmp_path / "talk.flac", np.zeros(16000 * 6), 16000)
    (tmp_path / "talk.segments.tsv").write_text(
        "segment_id\toffset\tduration\tsource\treference\n"
        "s1\t0.0\t2.5\tTHE CAT\tthe cat sat\n"
        "s2\t3.0\t3.0\tA DOG\tdown\n"
    )
    rows = read_tsv(tmp_path / "talk.segments.tsv", "de", "en")
    assert len(rows) == 1 and rows[0].segments[1] == (3000.0, 3000.0, "A DOG", "down")
    backend = EnglishOnly(WORDS, sample_rate=16000)
    scores = evaluate(rows, backend, waitk_sessions(backend), SessionOptions(), tmp_path / "out", progress=None)
    overall = scores["overall"]
    # words: the@1000 cat@2000 sats@3000 down@4000 -> "the cat sats" | "down"
    # sentence 1 (0-2.5 s, 3 reference words): LAAL over [1000, 2000, 3000] = 1000 + (2000 - 833.3) / 2 ... stops at 3000 >= 2500
    first = (1000 + (2000 - 2500 / 3) + (3000 - 2 * 2500 / 3)) / 3
    second = 4000 - 3000
    assert overall["StreamLAAL"] == pytest.approx((first + second) / 2)
    assert overall["chrF"] > 50  # the resegmented sentences match their references closely


def test_normalized_erasure_counts_words_removed_from_the_display():
    from simulst.eval.instances import display
    from simulst.events import Partial

    events = [
        Partial(" the cat sat", 1000, 0, 0),  # shows: the cat sat
        Commit(" the", 2000, 0, 0),
        Partial(" dog sat", 2000, 0, 0),  # "cat sat" -> "dog sat": 2 words erased
        Commit(" dog", 3000, 0, 0),
        Partial(" sat down", 3000, 0, 0),  # "sat" kept, "down" added: nothing erased
        Commit(" sat down", 4000, 0, 0),
        End("the dog sat down", 4000, 0, 0),
    ]
    # "the" shown at 1 s and kept; "dog" first shown at 2 s, "sat" (after "the dog") at 2 s, "down" at 3 s
    assert display(events) == (2, 1, [1000, 2000, 2000, 3000])
    assert display([Commit(" a b", 1, 0, 0), Commit(" c", 2, 0, 0)]) == (0, 0, [1, 1, 2])
    assert display([Commit(" a b", 1, 0, 0), Commit(",", 2, 0, 0)]) == (0, 0, [1, 2])  # "b" -> "b,": nothing erased


def test_display_delays_wait_for_the_words_before_them():
    from simulst.eval.instances import display
    from simulst.events import Partial

    events = [
        Partial(" a x c", 1000, 0, 0),  # "c" is shown at 1 s, but after a wrong word
        Partial(" a b c", 2000, 0, 0),  # from here on "a b c" never changes
        Commit(" a b c", 3000, 0, 0),
        End("a b c", 3000, 0, 0),
    ]
    assert display(events) == (2, 1, [1000, 2000, 2000])


def _instances(predictions, delays_ms, task="translate"):
    references = ["the cat sat on the mat today", "a dog ran in the park at noon", "birds sing in the tall old trees", "rain fell on the quiet town"]
    return [
        {"id": f"r{i}", "prediction": p, "reference": r, "delays": [float(delays_ms)] * len(p.split()), "source_length": 3000.0, "task": task, "tgt_lang": "en"}
        for i, (p, r) in enumerate(zip(predictions, references))
    ]


def test_paired_bootstrap_separates_a_real_difference_from_none():
    from simulst.eval.quality import bleu
    from simulst.eval.significance import paired_bootstrap

    good = _instances(["the cat sat on the mat today", "a dog ran in the park at noon", "birds sing in the tall old trees", "rain fell on the town"], 900)
    bad = _instances(["the cat is on a mat", "one dog ran to the park", "birds sing in trees", "rain on the quiet town"], 1500)
    quality, lag = paired_bootstrap(bad, good)
    assert quality.metric == "BLEU" and quality.other == pytest.approx(bleu([i["prediction"] for i in good], [i["reference"] for i in good]))
    assert quality.base == pytest.approx(bleu([i["prediction"] for i in bad], [i["reference"] for i in bad]))
    assert quality.delta > 0 and 0 < quality.low <= quality.delta <= quality.high and quality.p < 0.05
    assert lag.metric == "LAAL" and lag.delta < 0 and lag.high < 0 and lag.p < 0.05
    silent = [{**i, "prediction": "", "delays": []} if i["id"] == "r3" else i for i in good]  # a row it wrote nothing for
    from simulst.eval.scores import instance_latency

    written = [instance_latency(i)["LAAL"] for i in silent if i["delays"]]
    assert paired_bootstrap(good, silent)[1].other == pytest.approx(np.mean(written))  # left out of the mean latency, as in scores
    same, same_lag = paired_bootstrap(good, good)
    assert same.delta == same.low == same.high == 0 and same.p == 1 and same_lag.p == 1
    wer, _ = paired_bootstrap(_instances(["the cat sat", "a dog", "birds", "rain"], 900, "transcribe"), _instances([i["prediction"] for i in good], 900, "transcribe"))
    assert wer.metric == "WER" and wer.delta < 0  # fewer errors


def test_paired_bootstrap_of_long_form_runs_resamples_their_sentences():
    from simulst.eval.scores import group_scores
    from simulst.eval.significance import paired_bootstrap

    segments = [[0.0, 3000.0, "the cat sat on the mat today"], [3000.0, 3000.0, "a dog ran in the park at noon"], [6000.0, 3000.0, "birds sing in the tall old trees"]]

    def stream(prediction: str, lag_ms: float) -> list[dict]:  # one 9 s stream; each word lag_ms after its sentence starts
        words = prediction.split()
        delays = [3000.0 * min(k * 3 // len(words), 2) + lag_ms for k in range(len(words))]
        return [{"id": "talk", "prediction": prediction, "reference": " ".join(s[2] for s in segments), "delays": delays,
                 "source_length": 9000.0, "segments": segments, "tgt_lang": "en"}]

    good = stream("the cat sat on the mat today a dog ran in the park at noon birds sing in the tall old trees", 900)
    bad = stream("the cat is on a mat a dog ran to the park birds sing in trees", 1500)
    quality, lag = paired_bootstrap(bad, good)  # one stream, three sentences: rows enough to resample
    assert quality.base == pytest.approx(group_scores(bad)["BLEU"]) and quality.other == pytest.approx(group_scores(good)["BLEU"])
    assert lag.metric == "StreamLAAL/sentence" and lag.base == pytest.approx(group_scores(bad)["StreamLAAL"])
    assert quality.delta > 0 and lag.delta < 0


def test_score_against_another_run_prints_each_runs_difference(tmp_path, capsys):
    for name, delays in (("base", 1500), ("other", 900)):
        (tmp_path / name).mkdir()
        rows = _instances(["the cat sat on the mat", "a dog ran", "birds sing in trees", "rain fell"], delays)
        (tmp_path / name / "instances.log").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["score", str(tmp_path / "other"), "--against", str(tmp_path / "base")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("other\tBLEU\t") and "+0.00" in lines[-2]
    assert lines[-1].startswith("other\tLAAL\t") and lines[-1].endswith("\t-600.00\t[-600.00, -600.00]\t0.000")  # every word 600 ms sooner
    for sweep, delays in (("fast", (600, 1200)), ("slow", (1500, 3000))):  # the same words, sooner: a higher NoSE
        for point in delays:
            (tmp_path / sweep / str(point)).mkdir(parents=True)
            rows = _instances(["the cat sat on the mat", "a dog ran", "birds sing in trees", "rain fell"], point)
            (tmp_path / sweep / str(point) / "instances.log").write_text("".join(json.dumps(r) + "\n" for r in rows))
            assert main(["score", str(tmp_path / sweep / str(point))]) == 0
    assert main(["score", str(tmp_path / "base")]) == 0  # the offline run's scores.json
    capsys.readouterr()
    assert main(["score", str(tmp_path / "fast"), "--against", str(tmp_path / "slow")]) == 2
    assert "is a sweep: give --offline" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "fast"), "--against", str(tmp_path / "slow"), "--offline", str(tmp_path / "base")]) == 0
    sweep, metric, slow, fast = capsys.readouterr().out.splitlines()[-1].split("\t")[:4]
    assert (sweep, metric) == ("sweep", "NoSE") and float(fast) > float(slow) > 0
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / "instances.log").write_text(json.dumps({**_instances(["x"], 1)[0], "id": "elsewhere"}) + "\n")
    assert main(["score", str(tmp_path / "lone"), "--against", str(tmp_path / "base")]) == 2
    assert "share fewer than 2 rows" in capsys.readouterr().err
