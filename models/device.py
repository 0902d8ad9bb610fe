"""Where the learned models run: the ``device`` settings (auto / cpu / cuda) of keypoints and augment."""
from __future__ import annotations

import torch


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


def pick_device(setting: str, key: str = "device") -> str:
    """'auto' -> cuda when torch sees a GPU, else cpu; 'cuda' without a GPU is an error naming ``key``."""
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"{key} is 'cuda' but torch sees no GPU on this machine; use auto or cpu")
    return setting
