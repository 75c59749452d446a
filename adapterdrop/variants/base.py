"""What every built variant is: a module with logits, a training loss and a description of itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from adapterdrop.errors import VariantError
from adapterdrop.models.adapters import ACTIVATIONS, PLACEMENTS
from adapterdrop.models.encoder import region
from adapterdrop.variants.spec import Option, VariantSpec

#: labels of every task head (the benchmarks classify random inputs into two classes)
NUM_LABELS = 2


def placement_activation(values: Mapping[str, Any]) -> str:
    """The default non-linearity of the chosen placement: AdapterHub's ``non_linearity`` of its config."""
    return PLACEMENTS[values["placement"]].activation


ADAPTER_OPTIONS = (
    Option(
        "placement",
        str,
        "pfeiffer",
        "pfeiffer: AdapterHub seq_bn, after the feed-forward block; "
        "houlsby: AdapterHub double_seq_bn, after attention and after the feed-forward block",
        choices=tuple(PLACEMENTS),
    ),
    Option("reduction", int, 16, "reduction factor h/b of the bottleneck", minimum=1),
    Option(
        "act",
        str,
        None,
        "non-linearity of the bottleneck (default: the placement's, relu for pfeiffer, swish for houlsby)",
        choices=tuple(ACTIVATIONS),
        derive=placement_activation,
    ),
)


class VariantModel(nn.Module):
    """A built variant. ``forward`` gives logits ``(B, C)``, or ``(T, B, C)`` for ``num_tasks`` T > 1."""

    num_tasks: int = 1
    supports_training: bool = True
    #: True when a training step's computation is drawn at random (robust AdapterDrop): one step's FLOPs
    #: then say little, and the harness records the mean over many steps
    stochastic: bool = False

    def __init__(self, spec: VariantSpec) -> None:
        super().__init__()
        self.spec = spec

    def loss(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross entropy of the logits against ``labels (B,)``, summed over tasks."""
        return logits_loss(self(input_ids), labels)

    def describe(self) -> dict[str, Any]:
        """What was built, for the ``variant_info`` field of a record."""
        return {}

    def draw_values(self) -> tuple[int, ...]:
        """The values a training step of a ``stochastic`` variant draws from, each equally likely
        (robust AdapterDrop: the numbers of dropped layers); empty for a deterministic variant."""
        return ()

    @contextlib.contextmanager
    def fixed_draw(self, value: int) -> Iterator[None]:
        """Training steps inside the block use ``value`` instead of a random draw (to count the FLOPs and
        memory of each value exactly); a deterministic variant ignores it."""
        yield


def logits_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross entropy for ``(B, C)`` logits, or the sum over tasks for ``(T, B, C)`` (the region ``loss``)."""
    return region("loss", _cross_entropy, logits, labels)


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.dim() == 3:
        return sum(F.cross_entropy(task_logits.float(), labels) for task_logits in logits)
    return F.cross_entropy(logits.float(), labels)


def check_layers(name: str, value: int, layers: int, what: str = "n") -> int:
    """``value`` if it is a valid count of dropped layers (0..layers), else :class:`VariantError`."""
    if not 0 <= value <= layers:
        raise VariantError(
            f"{what}={value} is out of range for '{name}' on a {layers}-layer model (0..{layers})"
        )
    return value
