"""A DDP communication hook that all-reduces, counts what it reduces, or communicates nothing.

DDP hands a hook one :class:`torch.distributed.GradBucket` at a time, as soon as every gradient in it is
ready during backward; the hook returns a future of the reduced bucket. :func:`counting_hook` averages the
bucket over the group with torch's own ``allreduce_hook`` (what DDP's built-in reduction computes), and
while ``counter.recording`` adds the bucket's bytes (``numel x element size`` of its flat buffer) and shape
to a :class:`CommCounter`. With ``counter.silent`` it returns torch's ``noop_hook`` instead: the bucket comes
back unreduced, no byte travels, and everything else DDP does (bucketing, copies, the wait at the end of
backward) still runs; the difference between a step and a silent step is the communication the step waits
for (torch ships ``noop_hook`` for exactly this headroom analysis).

(No ``from __future__ import annotations`` here: DDP checks the hook's ``bucket`` annotation *object*.)
"""

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks.debugging_hooks import noop_hook
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook


@dataclass
class CommCounter:
    """State of :func:`counting_hook`: the group it reduces over, whether it is silent or recording, and
    what it recorded (bytes, and each bucket's element count and dtype)."""

    group: Any
    silent: bool = False
    recording: bool = False
    bytes: int = 0
    buckets: list[tuple[int, torch.dtype]] = field(default_factory=list)

    def reset(self) -> None:
        self.bytes = 0
        self.buckets = []


def counting_hook(state: CommCounter, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """All-reduce the bucket (mean over the group), recording it while ``state.recording``; with
    ``state.silent``, return it unreduced."""
    if state.silent:
        return noop_hook(None, bucket)
    if state.recording:
        buffer = bucket.buffer()
        state.buckets.append((buffer.numel(), buffer.dtype))
        state.bytes += buffer.numel() * buffer.element_size()
    return allreduce_hook(state.group, bucket)
