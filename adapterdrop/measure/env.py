"""The environment block of every record: versions, device (name and total memory), CPU, threads, what
changes GPU speed (matmul precision / TF32, the enabled attention backends, driver, CUDA and cuDNN), git
commit, host.

The commit comes from git where the toolkit is a checkout; a copy without ``.git`` (a tree copied to a GPU
machine, an installed wheel) names it through the ``ADAPTERDROP_GIT_COMMIT`` environment variable, or
through the package's install metadata (``direct_url.json`` of a ``pip install git+...``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil
import torch
import transformers

import adapterdrop

_PACKAGE_DIR = Path(adapterdrop.__file__).resolve().parent


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_PACKAGE_DIR), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


#: names the toolkit's commit where the tree has no ``.git`` (set it when copying a checkout elsewhere)
COMMIT_VARIABLE = "ADAPTERDROP_GIT_COMMIT"


def _installed_commit() -> str | None:
    """The commit pip recorded when the package was installed from a git URL, if it was."""
    try:
        text = importlib.metadata.distribution("adapterdrop").read_text("direct_url.json")
        return json.loads(text or "{}").get("vcs_info", {}).get("commit_id")
    except (importlib.metadata.PackageNotFoundError, ValueError, AttributeError):
        return None


@functools.cache
def git_state() -> tuple[str, bool | None]:
    """Commit of the toolkit and whether tracked files differ from it (None where that is unknown).

    From git in a checkout; else from ``ADAPTERDROP_GIT_COMMIT`` or the install metadata; else "unknown".
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return os.environ.get(COMMIT_VARIABLE) or _installed_commit() or "unknown", None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


@functools.cache
def gpu_driver() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi`` (None without it)."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def speed_settings(device: str) -> dict[str, Any]:
    """Settings that change how fast the same code runs: matmul precision, TF32 and attention backends."""
    settings: dict[str, Any] = {"matmul_precision": torch.get_float32_matmul_precision()}
    if torch.device(device).type == "cuda":
        cuda = torch.backends.cuda
        settings.update(
            {
                "cuda_matmul_allow_tf32": cuda.matmul.allow_tf32,
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "sdpa_enabled": {
                    "flash": cuda.flash_sdp_enabled(),
                    "mem_efficient": cuda.mem_efficient_sdp_enabled(),
                    "cudnn": cuda.cudnn_sdp_enabled(),
                    "math": cuda.math_sdp_enabled(),
                },
                "driver": gpu_driver(),
                "cudnn": torch.backends.cudnn.version(),
            }
        )
    return settings


def device_name(device: str) -> str:
    """The accelerator's name for ``cuda:N``, the CPU model for ``cpu``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return cpu_model()


def device_memory_bytes(device: str) -> int:
    """Total memory of the device in bytes: the GPU's for ``cuda:N``, the machine's RAM for ``cpu``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev).total_memory)
    return int(psutil.virtual_memory().total)


def collect_env(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Facts a record needs to be compared with another: versions, hardware, threads, code version."""
    commit, dirty = git_state()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "adapterdrop": adapterdrop.__version__,
        "device": device,
        "device_name": device_name(device),
        "device_memory_bytes": device_memory_bytes(device),
        "cuda": torch.version.cuda,
        "cpu": cpu_model(),
        "cpu_count": _cpu_count(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        **speed_settings(device),
        "git_commit": commit,
        "git_dirty": dirty,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
    }


def _cpu_count() -> int | None:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()
