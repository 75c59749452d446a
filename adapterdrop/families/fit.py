"""Whether a scenario's model fits the machine, decided before anything is built.

The parameter count comes from the config alone: the family's base is built on PyTorch's ``meta`` device
(shapes, no storage), and its distinct parameters are counted (tied embeddings once). A scenario needs at
least (bytes, in the dtype its weights are held in: the scenario's for native precision, fp32 under
autocast):

- the group's frozen base (every workload);
- training ``full``: its own copy of the weights, their gradients and AdamW's two moments;
- a decoder's LoRA variant: its own copy of the weights (``peft`` wraps modules in place);
- ``prefill`` and ``decode``: the KV cache of the prompt (``decode``: and the new token), see
  :func:`adapterdrop.families.decoder.kv_cache_bytes`.

Activations, temporaries and an adapter's own parameters are left out, so a scenario that is refused
cannot fit, and one that passes may still run out of memory (recorded as ``oom``). The capacity is the
host's total memory (``psutil``) on the CPU; on a GPU it is the device's total memory, and the host must
also hold the fp32 base while it is built, before it moves to the device.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import psutil
import torch

from adapterdrop.errors import AdapterDropError
from adapterdrop.families import decoder, resolve
from adapterdrop.scenario import Scenario

GIB = 2**30
ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


class FitError(AdapterDropError):
    """A model that cannot fit the machine for its workload (message is one line with the figures)."""


@functools.cache
def parameter_count(model: str) -> int:
    """Distinct parameters of ``model``'s base, counted on the ``meta`` device (nothing is allocated)."""
    family, config = resolve(model)
    with torch.device("meta"):
        base = family.build_base(config, 0)
    return sum(p.numel() for p in base.parameters())


@dataclass(frozen=True)
class Need:
    """Bytes a scenario needs at least, part by part, on one device, and what that device has."""

    where: str
    parts: dict[str, int]
    capacity: int

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        return self.total <= self.capacity

    def describe(self) -> str:
        """``W GiB (weights A + grads B ...)`` with two decimals."""
        parts = " + ".join(f"{name} {value / GIB:.2f}" for name, value in self.parts.items() if value)
        return f"{self.total / GIB:.2f} GiB ({parts})"


def needs(scenario: Scenario, capacity: dict[str, int] | None = None) -> list[Need]:
    """What ``scenario`` needs on each device it uses (the host, and its GPU if it runs on one), against
    ``capacity`` (device label -> bytes; default: :func:`device_capacity`)."""
    family, config = resolve(scenario.model)
    params = parameter_count(scenario.model)
    held = ELEMENT_BYTES[scenario.dtype] if scenario.precision == "native" else 4
    weights = params * held
    parts = {"weights": weights}
    full = scenario.variant.partition(":")[0] == "full"
    if scenario.phase == "train" and full:
        parts.update({"copy": weights, "grads": weights, "AdamW": 2 * weights})
    elif family.name == "decoder" and not full:  # peft wraps its own copy of the base
        parts["copy"] = weights
    if family.name == "decoder" and scenario.phase in ("prefill", "decode"):
        tokens = scenario.seq_len + (scenario.phase == "decode")
        parts["KV cache"] = decoder.kv_cache_bytes(config, scenario.batch_size, tokens, held)
    device = torch.device(scenario.device)

    def limit(label: str) -> int:
        return (capacity or {}).get(label) or device_capacity(label)

    if device.type == "cpu":
        return [Need("host", parts, limit("cpu"))]
    label = f"cuda:{device.index or 0}"
    return [
        Need(label, parts, limit(label)),
        Need("host", {"fp32 base while built": params * 4}, limit("cpu")),
    ]


def device_capacity(label: str) -> int:
    """Total bytes of memory of ``cpu`` (the host) or ``cuda:N``."""
    if label == "cpu":
        return psutil.virtual_memory().total
    return torch.cuda.get_device_properties(torch.device(label)).total_memory


def fit_problem(scenario: Scenario, capacity: dict[str, int] | None = None) -> str | None:
    """None if ``scenario`` may fit; else one line with the figures of the first device it cannot fit."""
    for need in needs(scenario, capacity):
        if not need.fits:
            what = f"{scenario.model} {scenario.phase} ({scenario.variant}, {scenario.dtype})"
            return (
                f"{what} needs at least {need.describe()} on the {need.where}, which has "
                f"{need.capacity / GIB:.2f} GiB: refused before it is built"
            )
    return None


def require_fit(scenario: Scenario, capacity: dict[str, int] | None = None) -> None:
    """:class:`FitError` (one line with the figures) unless ``scenario`` may fit."""
    problem = fit_problem(scenario, capacity)
    if problem is not None:
        raise FitError(problem)
