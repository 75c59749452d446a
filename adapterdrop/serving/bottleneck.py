"""The paper's parallel inference on a decoder with native bottleneck adapters: one prompt for N tasks.

Each of N tasks has its own :class:`~adapterdrop.models.adapters.BottleneckAdapter` after the MLP of each of
layers K .. L-1 (the placement of :mod:`adapterdrop.families.decoder_adapters`: layer i's ``mlp`` output x
becomes ``x + f_t(x)``). Per layer the N tasks' adapters are stacked in an
:class:`~adapterdrop.models.adapters.AdapterBank` (``bmm``): one forward hook on the layer's ``mlp`` applies
adapter t to row t of the batch with two batched products over the tasks (``matmul`` down, ``baddbmm`` up),
so a batch holds exactly one row per task, in task order. The hooks go on a
:func:`~adapterdrop.serving.copies.sharing_copy` of the base: the base model's weights are shared, and the
base itself carries no hook.

Two implementations of the same step:

- ``fork-bottleneck``: the prompt runs through layers 0 .. K-1 once on one row, a
  :class:`~adapterdrop.serving.fork.Fork` on layer K expands it to N rows, then the batched adapters.
- ``separate-bottleneck``: no fork; the prompt expanded to N rows from the start, the same adapters.

Adapter t of every layer is drawn after ``torch.manual_seed(seed + t)``, layer K first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel

from adapterdrop.families.decoder import layers as decoder_layers
from adapterdrop.models.adapters import AdapterBank, BottleneckAdapter, bottleneck_size
from adapterdrop.models.encoder import region
from adapterdrop.serving.copies import sharing_copy
from adapterdrop.serving.fork import Fork
from adapterdrop.serving.workloads import Served

#: implementations of the parallel workload with bottleneck adapters
BOTTLENECK_IMPLEMENTATIONS = ("fork-bottleneck", "separate-bottleneck")


@dataclass(frozen=True)
class BottleneckSpec:
    """N tasks' bottleneck adapters of one shape on decoder layers ``layers`` (K .. L-1)."""

    num_adapters: int
    layers: tuple[int, ...]
    #: bottleneck width h / reduction (at least 1)
    reduction: int = 16
    activation: str = "relu"
    seed: int = 0


def task_banks(hidden_size: int, spec: BottleneckSpec) -> dict[int, AdapterBank]:
    """Per adapted layer, the N tasks' adapters stacked (task t at index t), frozen, in eval mode."""
    width = bottleneck_size(hidden_size, spec.reduction)
    per_layer: dict[int, list[BottleneckAdapter]] = {layer: [] for layer in spec.layers}
    for task in range(spec.num_adapters):
        torch.manual_seed(spec.seed + task)
        for layer in spec.layers:
            per_layer[layer].append(BottleneckAdapter(hidden_size, width, spec.activation))
    return {
        layer: AdapterBank(adapters, impl="bmm").requires_grad_(False).eval()
        for layer, adapters in per_layer.items()
    }


class BatchedBottleneck:
    """Forward hooks on the ``mlp`` of each layer in ``banks`` of ``model``: row t gets task t's adapter.

    A hooked forward takes one row per task (B = N, row t for task t); any other batch fails.
    """

    def __init__(self, model: nn.Module, banks: Mapping[int, AdapterBank]) -> None:
        blocks = decoder_layers(model)
        outside = sorted(layer for layer in banks if not 0 <= layer < len(blocks))
        if outside:
            raise ValueError(f"adapter layer {outside[0]} out of range: the model has {len(blocks)} layers")
        self.handles: list[RemovableHandle] = [
            blocks[layer].mlp.register_forward_hook(self._hook(bank)) for layer, bank in banks.items()
        ]

    @staticmethod
    def _hook(bank: AdapterBank):
        def add_adapters(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            if output.shape[0] != bank.size:
                raise ValueError(f"batch of {output.shape[0]} rows, one row per task expected ({bank.size})")
            return output + region("adapter", bank, output, False)

        return add_adapters

    def remove(self) -> None:
        """Take the hooks off."""
        for handle in self.handles:
            handle.remove()
        self.handles = []


class BottleneckGroup:
    """The N tasks' adapters of ``spec`` on ``base`` (not modified), and the models that serve them."""

    def __init__(self, base: PreTrainedModel, spec: BottleneckSpec) -> None:
        if not spec.layers:
            raise ValueError("bottleneck adapters need at least one layer")
        self.spec = spec
        self.base = base
        self.banks = {
            layer: bank.to(base.device, base.dtype)
            for layer, bank in task_banks(base.config.hidden_size, spec).items()
        }
        self._served: dict[str, Served] = {}

    @property
    def fork_layer(self) -> int:
        """The first decoder layer with adapters: K."""
        return min(self.spec.layers)

    def served(self, implementation: str) -> Served:
        """``fork-bottleneck`` or ``separate-bottleneck`` (built once, on a copy sharing the base's weights).

        The fork's model takes the prompt as one row; the separate one takes it as N rows."""
        if implementation not in BOTTLENECK_IMPLEMENTATIONS:
            raise ValueError(
                f"unknown bottleneck implementation {implementation!r}; "
                f"choose from {', '.join(BOTTLENECK_IMPLEMENTATIONS)}"
            )
        if implementation not in self._served:
            model = sharing_copy(self.base)
            BatchedBottleneck(model, self.banks)
            if implementation == "fork-bottleneck":
                Fork(model, self.fork_layer, self.spec.num_adapters)
            self._served[implementation] = Served(model, self.base.config)
        return self._served[implementation]
