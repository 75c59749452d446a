"""What one data-parallel launch measures (:class:`DDPJob`), the scenarios it makes, and its JSON form.

The launcher writes the job to a file and every rank reads it back, so all ranks plan the same callables
in the same order.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapterdrop.errors import AdapterDropError
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.scenario import DDP_UNUSED_MODES, Scenario, default_precision

#: the comparison name every data-parallel record carries
COMPARISON = "ddp"
#: DDP's own default bucket cap (``bucket_cap_mb=None`` means 25 MiB)
DEFAULT_BUCKET_CAP_MB = 25
BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


class DDPJobError(AdapterDropError):
    """A data-parallel job that cannot run as asked (message is one line)."""


def default_world_sizes(world_size: int) -> tuple[int, ...]:
    """1, the powers of two below ``world_size``, and ``world_size`` itself: 1, 2, 4, 6 for 6 processes."""
    sizes = {1, world_size}
    size = 2
    while size < world_size:
        sizes.add(size)
        size *= 2
    return tuple(sorted(sizes))


@dataclass(frozen=True)
class DDPJob:
    """A data-parallel measurement: every variant trained with DDP at every world size, in one launch.

    ``batch_size`` is per process (each rank draws its own batch), so a world size w trains w x batch_size
    sequences per step. ``device`` is ``cpu`` (gloo) or ``cuda`` (each rank its local GPU, NCCL).
    """

    model: str
    variants: tuple[str, ...] = field(metadata={"help": "canonical names; the baseline first"})
    batch_size: int = field(metadata={"help": "sequences per step and process"})
    seq_len: int
    world_sizes: tuple[int, ...] = field(metadata={"help": "ascending; 1 gives the scaling efficiency"})
    results: str = field(metadata={"help": "results file rank 0 appends to"})
    unused_modes: tuple[str, ...] = ("per-draw",)
    device: str = "cpu"
    backend: str = ""
    bucket_cap_mb: int = DEFAULT_BUCKET_CAP_MB
    dtype: str = "fp32"
    precision: str | None = None
    threads: int = 1
    timing: TimingConfig = field(default_factory=TimingConfig)

    def __post_init__(self) -> None:
        if self.device not in BACKENDS:
            raise DDPJobError(f"data-parallel device must be cpu or cuda, not {self.device!r}")
        if not self.variants:
            raise DDPJobError("give at least one variant")
        if not self.world_sizes or any(w < 1 for w in self.world_sizes):
            raise DDPJobError(f"world sizes must be positive, got {list(self.world_sizes)}")
        unknown = [mode for mode in self.unused_modes if mode not in DDP_UNUSED_MODES or not mode]
        if unknown or not self.unused_modes:
            raise DDPJobError(f"unused-parameter mode must be find or per-draw, got {unknown or 'none'}")
        if self.bucket_cap_mb < 1:
            raise DDPJobError(f"bucket cap must be at least 1 MiB, got {self.bucket_cap_mb}")

    @property
    def baseline(self) -> str:
        return self.variants[0]

    @property
    def resolved_backend(self) -> str:
        """The torch.distributed backend: as given, else gloo on the CPU and NCCL on GPUs."""
        return self.backend or BACKENDS[self.device]

    def scenarios(self, world_size: int, unused: str, device_label: str) -> list[Scenario]:
        """The scenarios of one group (one world size, one unused-parameter mode): baseline first."""
        return [
            Scenario(
                model=self.model,
                variant=variant,
                phase="train",
                batch_size=self.batch_size,
                seq_len=self.seq_len,
                device=device_label,
                dtype=self.dtype,
                precision=default_precision("train", self.dtype, self.precision),
                threads=self.threads,
                comparison=COMPARISON,
                baseline=self.baseline,
                world_size=world_size,
                backend=self.resolved_backend,
                bucket_cap_mb=self.bucket_cap_mb,
                ddp_unused=unused,
            )
            for variant in self.variants
        ]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> DDPJob:
        data: dict[str, Any] = json.loads(text)
        data["timing"] = TimingConfig(**data["timing"])
        for name in ("variants", "world_sizes", "unused_modes"):
            data[name] = tuple(data[name])
        return cls(**data)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, path: Path | str) -> DDPJob:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
