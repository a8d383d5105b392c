"""One device resolver for every command: 'auto', 'cpu', 'cuda[:N]' or 'mps'."""

from __future__ import annotations

import torch

from neurocnnf.errors import NeurocnnfError

ACCEPTED = "auto, cpu, cuda, cuda:N or mps"


class DeviceError(NeurocnnfError, ValueError):
    """A device name that is unknown or not available on this machine."""


def check_device_name(name: str | torch.device) -> str:
    """``name`` normalized ('CUDA:0' -> 'cuda:0'); DeviceError unless it is a device name."""
    text = str(name).strip().lower()
    kind, sep, index = text.partition(":")
    if text in ("auto", "cpu", "mps", "cuda") or (kind == "cuda" and sep and index.isdigit()):
        return text
    raise DeviceError(f"unknown device {str(name)!r}; use {ACCEPTED}")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device ``name`` stands for; 'auto' picks cuda, then mps, then cpu.

    Raises DeviceError naming what is available when the device cannot be used here.
    """
    text = check_device_name(name)
    cuda, mps = torch.cuda.is_available(), _mps_available()
    if text == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    available = ", ".join(["cpu"] + (["cuda"] if cuda else []) + (["mps"] if mps else []))
    if text == "mps":
        if not mps:
            raise DeviceError(f"device 'mps' requested but MPS is not available on this "
                              f"machine; available: {available} (or auto)")
        return torch.device("mps")
    if not cuda:
        raise DeviceError(f"device {text!r} requested but CUDA is not available on this "
                          f"machine; available: {available} (or auto)")
    if ":" in text and int(text.partition(":")[2]) >= torch.cuda.device_count():
        raise DeviceError(f"device {text!r}: this machine has {torch.cuda.device_count()} "
                          "CUDA device(s)")
    return torch.device(text)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def bf16_autocast(device: torch.device) -> torch.autocast:
    """bfloat16 autocast on a CUDA or CPU ``device`` (the opt-in of training, ``bf16: true``,
    and extraction, ``--bf16``): convolutions and matmuls run in bfloat16, weights and
    reductions stay float32. On CPUs with bfloat16 units (AVX512-BF16 / AMX) and on GPUs this
    is the fastest lever measured (benchmarks/README.md); results are no longer equal to
    float32 to the last bit (about 1e-2 relative). DeviceError on other devices."""
    if device.type not in ("cuda", "cpu"):
        raise DeviceError(f"bfloat16 autocast runs on CUDA or CPU devices, not {device.type}: "
                          "leave bf16 off")
    return torch.autocast(device.type, dtype=torch.bfloat16)
