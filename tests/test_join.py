"""Writing joined long utterances: the data TSV, which clips each joins, and the audio."""

from pathlib import Path

import numpy as np
import soundfile

from simulst.eval.data import Row, read_tsv
from simulst.eval.join import Joined, write_joined


def test_write_joined_keeps_the_data_format_and_the_clips_it_joins(tmp_path):
    rows = [Row(f"de-{i}", Path(f"{i}.flac"), "de", "en", f"Satz {i}.", f"Sentence {i}.", licence="CC0-1.0") for i in range(3)]
    audio = np.linspace(-0.5, 0.5, 16000 * 3, dtype=np.float32)
    tsv = write_joined([Joined("de-en-long-0", audio, rows)], tmp_path, 16000)
    (row,) = read_tsv(tsv)
    assert (row.id, row.src_lang, row.tgt_lang, row.licence) == ("de-en-long-0", "de", "en", "CC0-1.0")  # a training card reads it
    assert row.source == "Satz 0. Satz 1. Satz 2." and row.reference == "Sentence 0. Sentence 1. Sentence 2."
    written, rate = soundfile.read(row.audio, dtype="float32")
    assert rate == 16000 and np.allclose(written, audio, atol=1e-4)
    assert (tmp_path / "joined.clips.tsv").read_text().splitlines() == ["id\tclips", "de-en-long-0\tde-0,de-1,de-2"]
