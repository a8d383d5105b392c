"""One device resolver for every command: 'auto', 'cpu', 'cuda[:N]' or 'mps'."""

from __future__ import annotations

import torch

ACCEPTED = "auto, cpu, cuda, cuda:N or mps"


class DeviceError(ValueError):
    """A device name that is unknown or not available on this machine."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device ``name`` stands for; 'auto' picks cuda, then mps, then cpu.

    Raises DeviceError naming what is available when the device cannot be used here.
    """
    text = str(name).strip().lower()
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
    kind, sep, index = text.partition(":")
    if kind == "cuda" and (not sep or index.isdigit()):
        if not cuda:
            raise DeviceError(f"device {text!r} requested but CUDA is not available on this "
                              f"machine; available: {available} (or auto)")
        if sep and int(index) >= torch.cuda.device_count():
            raise DeviceError(f"device {text!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        return torch.device(text)
    raise DeviceError(f"unknown device {str(name)!r}; use {ACCEPTED}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
