"""Writing joined long utterances: the data TSV, which clips each joins, the audio, and each as a long-form stream."""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from simulst.errors import SimulstError
from simulst.eval.data import Row, read_tsv
from simulst.eval.join import Joined, write_joined


def test_write_joined_keeps_the_data_format_and_the_clips_it_joins(tmp_path):
    rows = [Row(f"de-{i}", Path(f"{i}.flac"), "de", "en", f"Satz {i}.", f"Sentence {i}.", licence="CC0-1.0") for i in range(3)]
    audio = np.linspace(-0.5, 0.5, 16000 * 3, dtype=np.float32)
    tsv = write_joined([Joined("de-en-long-0", audio, rows, [16000, 8000, 24000])], tmp_path, 16000)
    (row,) = read_tsv(tsv)
    assert (row.id, row.src_lang, row.tgt_lang, row.licence) == ("de-en-long-0", "de", "en", "CC0-1.0")  # a training card reads it
    assert row.source == "Satz 0. Satz 1. Satz 2." and row.reference == "Sentence 0. Sentence 1. Sentence 2."
    written, rate = soundfile.read(row.audio, dtype="float32")
    assert rate == 16000 and np.allclose(written, audio, atol=1e-4)
    assert (tmp_path / "joined.clips.tsv").read_text().splitlines() == ["id\tclips", "de-en-long-0\tde-0,de-1,de-2"]


def test_a_joined_utterance_is_also_a_stream_whose_sentences_are_its_clips(tmp_path):
    rows = [Row(f"fr-{i}", Path(f"{i}.flac"), "fr", "en", f"Phrase {i}.", f"Sentence {i}.") for i in range(2)]
    write_joined([Joined("fr-en-long-0", np.zeros(16000 * 3, np.float32), rows, [20000, 28000])], tmp_path, 16000)
    (stream,) = read_tsv(tmp_path / "audio" / "fr-en-long-0.segments.tsv")
    assert (stream.id, stream.src_lang, stream.tgt_lang, stream.audio.name) == ("fr-en-long-0", "fr", "en", "fr-en-long-0.flac")
    assert stream.segments == ((0.0, 1250.0, "Phrase 0.", "Sentence 0."), (1250.0, 1750.0, "Phrase 1.", "Sentence 1."))
    assert read_tsv(tmp_path / "audio" / "fr-en-long-0.segments.tsv", "de")[0].src_lang == "de"  # the call's language first


def test_a_segments_file_without_its_columns_is_refused(tmp_path):
    soundfile.write(tmp_path / "talk.flac", np.zeros(1600), 16000)
    (tmp_path / "talk.segments.tsv").write_text("segment_id\tstart\tsource\treference\ns1\t0\ta\tb\n")
    with pytest.raises(SimulstError, match="missing column.*duration, offset"):
        read_tsv(tmp_path / "talk.segments.tsv")
