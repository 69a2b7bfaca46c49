"""Read a CTranslate2 ``model.bin`` and map a Whisper spec onto transformers' names.

Only numpy is needed: the ctranslate2 package is never imported.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from simulst.errors import ModelError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_model_bin(source: str | Path | bytes, label: str = "model.bin") -> tuple[str, dict[str, np.ndarray]]:
    """Return ``(spec_name, variables)`` of a CTranslate2 model file (a path or its bytes); aliases are resolved."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    path = label if isinstance(source, bytes) else source
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string() -> str:
        nonlocal pos
        length = take("H")
        text = data[pos : pos + length].rstrip(b"\0").decode("utf-8")
        pos += length
        return text

    try:
        version = take("I")
        spec = ""
        if version >= 2:
            spec = string()
            take("I")  # spec revision
        variables: dict[str, np.ndarray] = {}
        for _ in range(take("I")):
            name = string()
            rank = take("B")
            shape = tuple(take("I") for _ in range(rank))
            if version >= 4:
                dtype_id = take("B")
                if dtype_id not in _DTYPES:
                    raise ModelError(f"{path}: variable {name} has unsupported dtype id {dtype_id}")
                dtype = np.dtype(_DTYPES[dtype_id])
                nbytes = take("I")
            else:
                itemsize = take("B")
                dtype = np.dtype({4: np.float32, 2: np.float16, 1: np.int8}[itemsize])
                nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
            raw = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=pos)
            variables[name] = raw.reshape(shape)
            pos += nbytes
        if version >= 3:
            for _ in range(take("I")):
                alias, target = string(), string()
                variables[alias] = variables[target]
    except (struct.error, ValueError, KeyError) as exc:
        raise ModelError(f"{path} is not a readable CTranslate2 model ({exc})") from exc
    return spec, variables


def _split_qkv(prefix: str, var: dict[str, np.ndarray], out: dict[str, np.ndarray], dest: str) -> None:
    weight, bias = var[f"{prefix}/weight"], var[f"{prefix}/bias"]
    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
        part = weight.shape[0] // 3
        out[f"{dest}.{name}.weight"] = weight[i * part : (i + 1) * part]
        if name != "k_proj":
            out[f"{dest}.{name}.bias"] = bias[i * part : (i + 1) * part]


def _linear(src: str, var: dict[str, np.ndarray], out: dict[str, np.ndarray], dest: str) -> None:
    out[f"{dest}.weight"] = var[f"{src}/weight"]
    if f"{src}/bias" in var:
        out[f"{dest}.bias"] = var[f"{src}/bias"]


def _norm(src: str, var: dict[str, np.ndarray], out: dict[str, np.ndarray], dest: str) -> None:
    out[f"{dest}.weight"] = var[f"{src}/gamma"]
    out[f"{dest}.bias"] = var[f"{src}/beta"]


def _layer(src: str, var: dict[str, np.ndarray], out: dict[str, np.ndarray], dest: str, cross: bool) -> None:
    _split_qkv(f"{src}/self_attention/linear_0", var, out, f"{dest}.self_attn")
    _linear(f"{src}/self_attention/linear_1", var, out, f"{dest}.self_attn.out_proj")
    _norm(f"{src}/self_attention/layer_norm", var, out, f"{dest}.self_attn_layer_norm")
    if cross:
        _linear(f"{src}/attention/linear_0", var, out, f"{dest}.encoder_attn.q_proj")
        kv = var[f"{src}/attention/linear_1/weight"]
        kv_bias = var[f"{src}/attention/linear_1/bias"]
        half = kv.shape[0] // 2
        out[f"{dest}.encoder_attn.k_proj.weight"] = kv[:half]
        out[f"{dest}.encoder_attn.v_proj.weight"] = kv[half:]
        out[f"{dest}.encoder_attn.v_proj.bias"] = kv_bias[half:]
        _linear(f"{src}/attention/linear_2", var, out, f"{dest}.encoder_attn.out_proj")
        _norm(f"{src}/attention/layer_norm", var, out, f"{dest}.encoder_attn_layer_norm")
    _linear(f"{src}/ffn/linear_0", var, out, f"{dest}.fc1")
    _linear(f"{src}/ffn/linear_1", var, out, f"{dest}.fc2")
    _norm(f"{src}/ffn/layer_norm", var, out, f"{dest}.final_layer_norm")


def _count_layers(var: dict[str, np.ndarray], side: str) -> int:
    return len({m.group(1) for name in var if (m := re.match(rf"{side}/layer_(\d+)/", name))})


def whisper_state_dict(var: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Map WhisperSpec variables to a ``WhisperForConditionalGeneration`` state dict and its size config."""
    out: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        _linear(f"encoder/{conv}", var, out, f"model.encoder.{conv}")
    out["model.encoder.embed_positions.weight"] = var["encoder/position_encodings/encodings"]
    _norm("encoder/layer_norm", var, out, "model.encoder.layer_norm")
    enc_layers, dec_layers = _count_layers(var, "encoder"), _count_layers(var, "decoder")
    for i in range(enc_layers):
        _layer(f"encoder/layer_{i}", var, out, f"model.encoder.layers.{i}", cross=False)
    out["model.decoder.embed_tokens.weight"] = var["decoder/embeddings/weight"]
    out["model.decoder.embed_positions.weight"] = var["decoder/position_encodings/encodings"]
    _norm("decoder/layer_norm", var, out, "model.decoder.layer_norm")
    for i in range(dec_layers):
        _layer(f"decoder/layer_{i}", var, out, f"model.decoder.layers.{i}", cross=True)
    d_model = out["model.encoder.layer_norm.weight"].shape[0]
    heads = var.get("encoder/num_heads")
    sizes = {
        "d_model": int(d_model),
        "encoder_layers": enc_layers,
        "decoder_layers": dec_layers,
        "encoder_attention_heads": int(heads) if heads is not None else d_model // 64,
        "decoder_attention_heads": int(heads) if heads is not None else d_model // 64,
        "encoder_ffn_dim": int(out["model.encoder.layers.0.fc1.weight"].shape[0]),
        "decoder_ffn_dim": int(out["model.decoder.layers.0.fc1.weight"].shape[0]),
        "num_mel_bins": int(out["model.encoder.conv1.weight"].shape[1]),
        "vocab_size": int(out["model.decoder.embed_tokens.weight"].shape[0]),
        "max_source_positions": int(out["model.encoder.embed_positions.weight"].shape[0]),
        "max_target_positions": int(out["model.decoder.embed_positions.weight"].shape[0]),
    }
    return out, sizes
