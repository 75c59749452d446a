"""The environment block of every record: versions, device, CPU, threads, git commit, host."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

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


@functools.cache
def git_state() -> tuple[str, bool | None]:
    """Commit of the toolkit's checkout ("unknown" outside git) and whether tracked files differ from it."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "unknown", None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def device_name(device: str) -> str:
    """The accelerator's name for ``cuda:N``, the CPU model for ``cpu``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return cpu_model()


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
        "cuda": torch.version.cuda,
        "cpu": cpu_model(),
        "cpu_count": _cpu_count(),
        "threads": threads if threads is not None else torch.get_num_threads(),
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
