"""CTranslate2 model.bin reading, the embedded weights' hash check, and clear errors for bad model paths."""

import struct

import numpy as np
import pytest

from simulst.errors import ModelError
from simulst.models.ct2 import read_model_bin
from simulst.models.whisper_load import join_parts, load_whisper


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_model_bin(variables: dict, aliases: dict | None = None, spec: str = "WhisperSpec") -> bytes:
    """The version-6 layout described in shared/notes/ctranslate2-whisper.md."""
    dtype_ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3, np.dtype(np.float16): 4}
    out = struct.pack("<I", 6) + _string(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, value in variables.items():
        value = np.asarray(value)
        out += _string(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<BI", dtype_ids[value.dtype], value.nbytes) + value.tobytes()
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases)) + b"".join(_string(a) + _string(t) for a, t in aliases.items())
    return out


def test_reads_variables_dtypes_and_aliases(tmp_path):
    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    heads = np.array(8, dtype=np.int16)
    path = tmp_path / "model.bin"
    path.write_bytes(write_model_bin({"encoder/w": weight, "encoder/num_heads": heads}, {"decoder/w": "encoder/w"}))
    spec, variables = read_model_bin(path)
    assert spec == "WhisperSpec"
    np.testing.assert_array_equal(variables["encoder/w"], weight)
    assert variables["encoder/w"].dtype == np.float16
    assert int(variables["encoder/num_heads"]) == 8
    assert variables["decoder/w"] is variables["encoder/w"]


def test_truncated_file_is_a_clear_error(tmp_path):
    data = write_model_bin({"encoder/w": np.zeros((4, 4), np.float32)})
    (tmp_path / "model.bin").write_bytes(data[:40])
    with pytest.raises(ModelError, match="not a readable CTranslate2 model"):
        read_model_bin(tmp_path / "model.bin")


def test_join_parts_checks_the_hash(tmp_path):
    import hashlib

    (tmp_path / "a").write_bytes(b"hello ")
    (tmp_path / "b").write_bytes(b"world")
    parts = [tmp_path / "a", tmp_path / "b"]
    assert join_parts(parts, hashlib.sha256(b"hello world").hexdigest()) == b"hello world"
    with pytest.raises(ModelError, match="corrupted weights: sha256"):
        join_parts(parts, hashlib.sha256(b"something else").hexdigest())


def test_model_dir_without_weights(tmp_path):
    with pytest.raises(ModelError, match="holds no model weights"):
        load_whisper(str(tmp_path))


def test_ct2_dir_with_garbage_weights(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelError, match="not a readable CTranslate2 model"):
        load_whisper(str(tmp_path))


def test_ct2_dir_of_another_model(tmp_path):
    (tmp_path / "model.bin").write_bytes(write_model_bin({"x": np.zeros(2, np.float32)}, spec="TransformerSpec"))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelError, match="not a Whisper model"):
        load_whisper(str(tmp_path))


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'whisper-huge'"):
        load_whisper("whisper-huge")
    with pytest.raises(ModelError, match="not a directory"):
        load_whisper("./no/such/dir")
