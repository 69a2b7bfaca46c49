"""Where a backend's torch parts (and CTranslate2's encoder) run, and in which float type."""

from __future__ import annotations

from typing import Literal

from simulst.errors import OptionError

Device = Literal["auto", "cpu", "cuda", "mps"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
DEVICE_HELP = "where the model runs: auto (CUDA, then Apple's MPS, then the CPU), cpu, cuda, mps"
DTYPE_HELP = "the model's float type on an accelerator: auto (float16 on CUDA and MPS, float32 on the CPU), float32, float16, bfloat16"


def resolve(device: str, dtype: str) -> tuple[str, str]:
    """``(device, dtype)`` for the options: ``auto`` made concrete, a device this machine lacks refused."""
    import torch

    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if device == "auto":
        device = next(d for d in ("cuda", "mps", "cpu") if available[d])
    elif not available[device]:
        raise OptionError(f"--device {device}: this machine has no {device.upper()} device torch can use (devices here: "
                          f"{', '.join(d for d, ok in available.items() if ok)})")
    if dtype == "auto":
        dtype = "float32" if device == "cpu" else "float16"
    elif device == "cpu" and dtype != "float32":
        raise OptionError(f"--dtype {dtype} is for accelerators; on the CPU the model runs in float32 (Whisper's --decoder-dtype bfloat16 "
                          "puts its decoder's products in bfloat16 where the CPU does that natively)")
    return device, dtype


def torch_dtype(dtype: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
