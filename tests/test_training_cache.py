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


def test_a_feature_pass_stopped_midway_resumes_with_the_items_it_had_not_done(tmp_path, monkeypatch):
    class Backend:
        identity, sample_rate = "fake", 16000
        options = type("O", (), {"alignment": "normalized", "pad_ms": 8000})()

    made, stop_at = [], ["b"]

    def features(backend, audio, options, step_ms):
        if stop_at and options.src_lang == stop_at[0]:
            stop_at.clear()
            raise KeyboardInterrupt
        made.append(options.src_lang)
        return {"tokens": np.array([len(made)]), "audio": audio[:2]}

    monkeypatch.setattr(teacher, "utterance_features", features)
    monkeypatch.setattr("simulst.streaming.audio.load_audio", lambda path, rate: np.arange(5, dtype=np.float32))
    items = [(name, "x.flac", SessionOptions(src_lang=name)) for name in ("a", "b", "c")]
    with pytest.raises(KeyboardInterrupt):
        teacher.cache_features(Backend(), items, tmp_path, 400)
    assert made == ["a"]
    paths = teacher.cache_features(Backend(), items, tmp_path, 400)
    assert made == ["a", "b", "c"]  # the first item was not computed again
    assert [int(np.load(p)["tokens"][0]) for p in paths] == [1, 2, 3]
    assert teacher.cache_features(Backend(), items, tmp_path, 400) == paths and made == ["a", "b", "c"]
