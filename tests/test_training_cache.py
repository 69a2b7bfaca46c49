"""The recipes' caches: one file per utterance, written whole or not at all, so an interrupted run resumes."""

import numpy as np
import pytest

from simulst.options import SessionOptions
from simulst.training import teacher
from simulst.training.cache import key, once


def test_an_interrupted_write_leaves_nothing_and_the_next_run_computes_it(tmp_path):
    path = tmp_path / f"{key('v1', 'item')}.npz"

    def broken() -> dict:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        once(path, broken)
    assert not list(tmp_path.iterdir())
    assert once(path, lambda: {"x": np.arange(3)}) == path and np.load(path)["x"].tolist() == [0, 1, 2]
    assert once(path, broken) == path  # there: not computed again


class FakeBackend:
    identity, numerics, sample_rate = "fake", "cpu, decoder float32", 16000
    options = type("O", (), {"alignment": "normalized", "pad_ms": 8000})()


class Bfloat16Backend(FakeBackend):
    numerics = "cpu, decoder bfloat16"


def test_a_feature_pass_stopped_midway_resumes_with_the_items_it_had_not_done(tmp_path, monkeypatch):
    made, stop_at = [], ["b"]

    def features(backend, audio, options, step_ms, most_cuts=None, resume=None):
        if stop_at and options.src_lang == stop_at[0]:
            stop_at.clear()
            raise KeyboardInterrupt
        made.append(options.src_lang)
        return {"tokens": np.array([len(made)]), "audio": audio[:2]}

    monkeypatch.setattr(teacher, "utterance_features", features)
    monkeypatch.setattr("simulst.streaming.audio.load_audio", lambda path, rate: np.arange(5, dtype=np.float32))
    items = [(name, "x.flac", SessionOptions(src_lang=name)) for name in ("a", "b", "c")]
    with pytest.raises(KeyboardInterrupt):
        teacher.cache_features(FakeBackend(), items, tmp_path, 400)
    assert made == ["a"]
    notes = []
    paths = teacher.cache_features(FakeBackend(), items, tmp_path, 400, lambda done, total, note: notes.append(note))
    assert made == ["a", "b", "c"]  # the first item was not computed again
    assert notes[0] == "a" and all(n.endswith(" utt/min") for n in notes[1:])  # the rate counts computed items
    assert [int(np.load(p)["tokens"][0]) for p in paths] == [1, 2, 3]
    assert teacher.cache_features(FakeBackend(), items, tmp_path, 400) == paths and made == ["a", "b", "c"]


def test_at_most_so_many_truncation_points_spread_over_the_utterance():
    assert teacher.cut_points(10, 3) == [3, 6, 9]
    assert teacher.cut_points(100, 10) == list(range(10, 100, 10))
    assert teacher.cut_points(100, 10, most=3) == [10, 50, 90]
    assert teacher.cut_points(100, 10, most=20) == teacher.cut_points(100, 10)
    long = teacher.cut_points(16000 * 60, 6400, most=12)
    assert len(long) == 12 and long[0] == 6400 and long == sorted(set(long))


def test_training_rows_come_from_a_training_tsv_in_the_languages_the_model_knows(tmp_path):
    """The training set's format (id audio duration lang text ...); rows in a language the model lacks are
    counted and left out; --per-language caps each language, --languages chooses them."""
    import shutil

    import soundfile

    from simulst.errors import OptionError
    from simulst.eval.data import read_tsv
    from simulst.models import base
    from simulst.training.policy import TrainOptions, training_items
    from tests.conftest import clip

    for name in ("de-000", "de-001", "fr-000"):
        shutil.copy(clip(name), tmp_path / f"{name}.flac")
    lines = ["id\taudio\tduration\tlang\ttext\tsource\tlicence"]
    lines += [f"{n}\t{n}.flac\t1\t{lang}\t\tcv\tCC0-1.0" for n, lang in (("de-000", "de"), ("de-001", "de"), ("fr-000", "xx"))]
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    rows = read_tsv(tmp_path / "train.tsv")
    assert [(r.src_lang, r.tgt_lang, r.reference) for r in rows] == [("de", None, ""), ("de", None, ""), ("xx", None, "")]

    class Backend(base.Backend):
        def open(self, options):
            if options.src_lang == "xx":
                raise OptionError("no such language")

    items, sources, unknown = training_items(rows, TrainOptions(), Backend())
    assert [(i[2].src_lang, i[2].task) for i in items] == [("de", "translate"), ("de", "translate")] and unknown == {"xx": 1}
    hours = sum(soundfile.info(str(tmp_path / f"{n}.flac")).duration for n in ("de-000", "de-001")) / 3600
    assert sources == {"de-en real": {"utterances": 2, "hours": pytest.approx(hours, abs=1e-4), "licences": ["CC0-1.0"]}}
    items, _, _ = training_items(rows, TrainOptions(per_language=1), Backend())
    assert len(items) == 1
    items, _, unknown = training_items(rows, TrainOptions(languages="fr,en"), Backend())
    assert items == [] and unknown == {}


def test_a_recipe_logged_to_a_file_reports_progress_in_timed_lines(monkeypatch):
    import io

    from rich.console import Console

    from simulst.training import progress

    clock = iter([0.0, 1.0, 2.0, 40.0, 41.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    log = io.StringIO()
    with progress.recipe_bars(Console(file=log)) as bar:
        update = bar("features")  # started at 0 s
        update(1, 4, "a")  # 1 s: the first line
        update(2, 4, "b")  # 2 s: too soon after it
        update(3, 4, "c")  # 40 s: a line
        update(4, 4, "d")  # 41 s: done, always a line
    assert log.getvalue().splitlines() == ["features 1/4 1s, eta 3s  a", "features 3/4 40s, eta 13s  c", "features 4/4 41s  d"]


def test_features_of_the_same_weights_with_other_numerics_are_cached_apart(tmp_path, monkeypatch):
    """A decoder in bfloat16 writes other words now and then than one in float32: the same recipe run with other
    numerics into the same directory computes its own features instead of reusing the others'."""
    made = []

    def features(backend, audio, options, step_ms, most_cuts=None, resume=None):
        made.append(backend.numerics)
        return {"tokens": np.array([len(made)])}

    monkeypatch.setattr(teacher, "utterance_features", features)
    monkeypatch.setattr("simulst.streaming.audio.load_audio", lambda path, rate: np.zeros(5, np.float32))
    items = [("a", "x.flac", SessionOptions(src_lang="de"))]
    float32 = teacher.cache_features(FakeBackend(), items, tmp_path, 400)
    bfloat16 = teacher.cache_features(Bfloat16Backend(), items, tmp_path, 400)
    assert made == [FakeBackend.numerics, Bfloat16Backend.numerics] and float32 != bfloat16
    assert teacher.cache_features(FakeBackend(), items, tmp_path, 400) == float32 and len(made) == 2
