"""The ranks of one launch: the process group, one sub-group per measured world size, and the control
collectives that keep every rank in step.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` and the rendezvous address;
:meth:`Team.join` reads them. The sub-group of world size w holds ranks 0..w-1, so one launch of N
processes measures every world size up to N, one after another inside each round, while the ranks outside
the sub-group wait at a barrier. Control traffic (barriers, the slowest rank's time, gathering records)
runs over a gloo group of all ranks, also when the gradients go over NCCL.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil
import torch
import torch.distributed as dist


@dataclass
class Team:
    """This rank's place in the launch and the groups it talks through."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str
    control: Any = field(repr=False)
    groups: dict[int, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def join(cls, device_kind: str, backend: str, world_sizes: Iterable[int]) -> Team:
        """Join the process group torchrun set up and make the sub-group of every world size in
        ``world_sizes`` (every rank takes part in making every group, as torch requires)."""
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device_kind == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        dist.init_process_group(backend=backend)
        team = cls(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=local_rank,
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
            device=device,
            backend=backend,
            control=dist.new_group(backend="gloo"),
        )
        for size in world_sizes:
            team.groups[size] = dist.new_group(ranks=list(range(size)), backend=backend)
        return team

    def member(self, world_size: int) -> bool:
        """Whether this rank trains in the sub-group of ``world_size``."""
        return self.rank < world_size

    def barrier(self) -> None:
        dist.barrier(group=self.control)

    def max(self, value: float) -> float:
        """The largest ``value`` over all ranks (the slowest rank's time; a non-member gives 0)."""
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.control)
        return float(tensor.item())

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order (any picklable object)."""
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value, group=self.control)
        return values

    def leave(self) -> None:
        dist.destroy_process_group()


def hostname() -> str:
    return socket.gethostname()


def own_cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def without_siblings(load: dict[str, Any], sibling_cpu_s: float, loaded_cores: float) -> dict[str, Any]:
    """A :class:`~adapterdrop.measure.load.LoadTracker` reading of rank 0 with the CPU time of the other
    ranks on its host taken out of ``other_cpu_cores`` (they are the measurement, not load on it), and
    ``loaded`` decided again with ``loaded_cores``."""
    seconds = load.get("seconds") or 0.0
    if not seconds:
        return dict(load)
    other = max(0.0, load.get("other_cpu_cores", 0.0) - sibling_cpu_s / seconds)
    steal = load.get("steal_cpu_cores", 0.0)
    return {
        **load,
        "other_cpu_cores": round(other, 3),
        "sibling_ranks_cpu_cores": round(sibling_cpu_s / seconds, 3),
        "loaded": other >= loaded_cores or steal >= loaded_cores,
    }
