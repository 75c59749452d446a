"""A prepared training step wrapped in ``DistributedDataParallel``, and the two steps timed beside it.

The variant and its step come from :func:`adapterdrop.measure.prepare.prepare_step` (the one way a variant
is built); here its loss becomes the forward of a :class:`LossModule`, the module DDP wraps, which holds
exactly the parameters DDP is to reduce. A step is :func:`adapterdrop.measure.step.train_step` with
``ddp(value)`` as its loss and the prepared step's own optimizer (AdamW, fused or foreach).
Every wrapper reduces through :func:`~adapterdrop.distributed.hooks.counting_hook` (torch's
``allreduce_hook``, the mean DDP's built-in reduction computes), so that the same wrapper can count the
bytes of a step and run the same step without communication (``silent_step``); ``comm_only`` all-reduces
the buckets of the same steps with nothing else running.

Robust AdapterDrop draws, per batch, how many of the lowest layers run without adapters; the adapters of
those layers get no gradient in that step, which DDP's default rejects ("Expected to have finished
reduction in the prior iteration"). Two correct ways, ``unused``:

- ``find``: one DDP wrapper with ``find_unused_parameters=True``. Every forward walks the autograd graph
  to mark the parameters it does not reach as ready; their buckets are still all-reduced whole (zeros
  for the unused part), so a step reduces every trainable parameter.
- ``per-draw``: one DDP wrapper per value the variant draws, each over the parameters a step with that
  value trains (found once by a probe backward); a step picks the wrapper of its draw. No graph walk, and
  a step reduces only the adapters it trained. Every rank takes the draws in the same order, so all ranks
  pick the same wrapper in the same step (DDP's collectives must match). A deterministic variant has one
  draw: per-draw is plain DDP.

The timed callables (``step``, ``silent_step``, ``comm_only``) run a *cycle*: one step per value the
variant draws, each pinned once in ascending order (:attr:`DataParallelStep.steps_per_call` steps; one for
a deterministic variant), so a call's time per step is the exact expectation over the equally likely
draws, as in a single-process measurement, not the mean of whichever values random draws gave a sample.

(``static_graph=True`` does not apply: the set of used parameters changes from step to step.) Both give
every parameter the mean of the ranks' gradients, and leave the gradient of a parameter no rank used
unset (None), as a single process would; :mod:`adapterdrop.distributed.checks` proves it per run.

A :class:`DataParallelStep` needs a prepared step of its own: with ``find_unused_parameters`` a reducer
marks a parameter as used whenever its gradient is accumulated, also in another wrapper's backward, and
then rejects the next step that leaves it unused.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from adapterdrop.distributed.hooks import CommCounter, counting_hook
from adapterdrop.errors import AdapterDropError
from adapterdrop.measure import step as steps
from adapterdrop.measure.types import PreparedStep
from adapterdrop.variants.base import VariantModel

#: a draw value; None for a deterministic variant (one draw, nothing pinned)
Draw = int | None


@contextlib.contextmanager
def pinned(model: VariantModel, value: Draw) -> Iterator[None]:
    """Training steps in the block use ``value`` as the variant's draw (nothing is pinned for None)."""
    if value is None:
        yield
    else:
        with model.fixed_draw(value):
            yield


class LossModule(nn.Module):
    """The module DDP wraps: ``reduced`` holds the parameters DDP all-reduces (shared with the variant,
    not copies); ``forward(value)`` is the variant's training loss on this rank's batch with the draw
    pinned to ``value``. The variant itself is not a sub-module, so DDP sees only ``reduced``."""

    def __init__(self, model: VariantModel, loss: Callable[[], torch.Tensor], params: Sequence[nn.Parameter]):
        super().__init__()
        self.reduced = nn.ParameterList(params)
        self._pin = lambda value: pinned(model, value)
        self._loss = loss

    def forward(self, value: Draw) -> torch.Tensor:
        with self._pin(value):
            return self._loss()


def used_parameters(prepared: PreparedStep, value: Draw) -> list[nn.Parameter]:
    """The trainable parameters that get a gradient in a step with the draw pinned to ``value`` (a probe
    backward on this rank alone, gradients cleared after)."""
    assert prepared.loss is not None, "a data-parallel step trains"
    with pinned(prepared.model, value):
        prepared.loss().backward()
    used = [p for p in prepared.trainable if p.grad is not None]
    prepared.model.zero_grad(set_to_none=True)
    return used


def nbytes(params: Sequence[torch.Tensor]) -> int:
    """Bytes of ``params`` (numel x element size): what one all-reduce of their gradients moves per rank."""
    return sum(p.numel() * p.element_size() for p in params)


def ddp_bucket_bytes(wrapper: DistributedDataParallel) -> list[int] | None:
    """DDP's own bucket sizes in bytes, from its logging data (a private API: None where it is absent):
    the buckets it rebuilt after its first iteration in the order gradients became ready, once it says so
    (a few iterations later), else the buckets it was built with."""
    try:
        data = wrapper._get_ddp_logging_data()
    except (AttributeError, RuntimeError):
        return None
    sizes = data.get("rebuilt_bucket_sizes") or data.get("bucket_sizes")
    if isinstance(sizes, str):
        return [int(size) for size in re.findall(r"\d+", sizes)]
    return list(sizes) if isinstance(sizes, list | tuple) else None


@dataclass(frozen=True)
class StepCount:
    """What one step with one draw all-reduced: bytes and buckets counted by the hook, what the reduced
    parameters make (``expected_bytes``) and DDP's own bucket sizes (None where DDP does not say)."""

    bytes: int
    buckets: list[tuple[int, torch.dtype]]
    expected_bytes: int
    ddp_bucket_bytes: list[int] | None


class DataParallelStep:
    """A prepared training step under DDP in ``group`` (see the module docstring for ``unused``); the
    prepared step must not be shared with another :class:`DataParallelStep`."""

    def __init__(
        self,
        prepared: PreparedStep,
        group: Any,
        *,
        unused: str,
        bucket_cap_mb: int,
    ) -> None:
        if prepared.loss is None or prepared.optimizer is None:
            raise AdapterDropError("a data-parallel step trains: prepare a train scenario")
        self.prepared = prepared
        self.group = group
        self.unused = unused
        self.values: tuple[Draw, ...] = tuple(prepared.model.draw_values()) or (None,)
        if unused == "find":
            self.reduced: dict[Draw, list[nn.Parameter]] = {None: prepared.trainable}
        else:
            self.reduced = {value: used_parameters(prepared, value) for value in self.values}
        self.counter = CommCounter(group)
        self._wrappers = {k: self._wrap(params, bucket_cap_mb) for k, params in self.reduced.items()}
        self._comm_buffers: dict[Draw, list[torch.Tensor]] = {}

    def _wrap(self, params: list[nn.Parameter], bucket_cap_mb: int) -> Any:
        if not params:
            raise AdapterDropError(f"{self.prepared.scenario.variant}: a draw trains no parameter")
        device = self.prepared.device
        wrapper = DistributedDataParallel(
            LossModule(self.prepared.model, self.prepared.loss, params),
            device_ids=[device.index] if device.type == "cuda" else None,
            process_group=self.group,
            bucket_cap_mb=bucket_cap_mb,
            find_unused_parameters=self.unused == "find",
        )
        wrapper.register_comm_hook(self.counter, counting_hook)
        return wrapper

    def wrapper(self, value: Draw) -> Any:
        """The DDP wrapper of a step with draw ``value``: the one wrapper for ``find``, the draw's own for
        ``per-draw``."""
        return self._wrappers[None if self.unused == "find" else value]

    def _train(self, value: Draw, *, silent: bool) -> None:
        self.counter.silent = silent
        steps.train_step(lambda: self.wrapper(value)(value), self.prepared.optimizer)

    @property
    def steps_per_call(self) -> int:
        """Steps one call of :meth:`step`, :meth:`silent_step` or :meth:`comm_only` runs: one per draw."""
        return len(self.values)

    def step(self) -> None:
        """A cycle of data-parallel training steps, one per draw value in order (one step for a
        deterministic variant)."""
        for value in self.values:
            self._train(value, silent=False)

    def silent_step(self) -> None:
        """The same cycle with nothing communicated (each rank keeps, and applies, its own gradients)."""
        for value in self.values:
            self._train(value, silent=True)

    def comm_only(self) -> None:
        """All-reduce the buckets of the cycle's steps (one per draw value), nothing else; needs
        :meth:`count` first."""
        for value in self.values:
            works = [dist.all_reduce(t, group=self.group, async_op=True) for t in self._comm_buffers[value]]
            for work in works:
                work.wait()

    def warm_up(self, steps: int) -> None:
        """Every wrapper's first iteration (DDP fixes its buckets there) with every draw, then ``steps``
        more steps (taking the draws in turn)."""
        for value in self.values:
            self._train(value, silent=False)
        for index in range(steps):
            self._train(self.values[index % len(self.values)], silent=False)

    def count(self) -> dict[Draw, StepCount]:
        """One recorded backward per draw value (no optimizer step): what each all-reduces. Also makes the
        buffers :meth:`comm_only` reduces."""
        counts: dict[Draw, StepCount] = {}
        self.counter.silent = False
        for value in self.values:
            self.counter.reset()
            self.counter.recording = True
            try:
                self.wrapper(value)(value).backward()
            finally:
                self.counter.recording = False
            self.prepared.model.zero_grad(set_to_none=True)
            buckets = list(self.counter.buckets)
            counts[value] = StepCount(
                bytes=self.counter.bytes,
                buckets=buckets,
                expected_bytes=nbytes(self.reduced[None if self.unused == "find" else value]),
                ddp_bucket_bytes=ddp_bucket_bytes(self.wrapper(value)),
            )
            device = self.prepared.device
            self._comm_buffers[value] = [torch.zeros(n, dtype=t, device=device) for n, t in buckets]
        return counts
