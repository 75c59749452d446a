"""Proof that a data-parallel step is correct, taken before it is timed: a wrong step's time is worthless.

For every value a step can draw, with the same dropout seed on every rank and each rank's own batch:

1. the rank's own gradients: one backward through the timed wrapper inside ``no_sync()`` (no all-reduce);
2. the data-parallel gradients: the same backward without ``no_sync()``;

then, gathered over the group: every rank holds the same data-parallel gradients, they equal the mean of
the ranks' own gradients, and a parameter that no rank's step used has no gradient at all (None, as in
one process), while one that a rank used has one. Each rank's batch differs (seeded by its rank), so
gradients that were never reduced cannot pass. Nothing is updated: gradients are cleared after.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from adapterdrop.distributed.wrap import DataParallelStep, Draw

#: dropout seed of both backward passes (the same on every rank)
CHECK_SEED = 1234
#: allowed difference, relative to the largest mean gradient, per gradient dtype (sums in another order)
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 1e-2, torch.bfloat16: 1e-2}


@dataclass(frozen=True)
class GradientCheck:
    """The outcome over every draw: the largest difference between ranks and from the mean (relative to
    the largest mean gradient), and whether they are within :data:`TOLERANCE` and the None pattern holds."""

    draws: int
    max_rank_difference: float
    max_mean_difference: float
    unused_match: bool
    agree: bool

    def fields(self) -> dict[str, object]:
        return {
            "grads_checked_draws": self.draws,
            "grads_max_rank_difference": self.max_rank_difference,
            "grads_max_mean_difference": self.max_mean_difference,
            "grads_unused_match": self.unused_match,
            "grads_agree": self.agree,
        }


def _gradients(dp: DataParallelStep) -> tuple[torch.Tensor, torch.Tensor]:
    """All trainable gradients flattened in parameter order (0 where None), and which were not None."""
    params = dp.prepared.trainable
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=flat.device)
    dp.prepared.model.zero_grad(set_to_none=True)
    return flat.detach(), present


def _backward(dp: DataParallelStep, value: Draw, synced: bool) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(CHECK_SEED)
    wrapper = dp.wrapper(value)
    if synced:
        wrapper(value).backward()
    else:
        with wrapper.no_sync():
            wrapper(value).backward()
    return _gradients(dp)


def _gather(tensor: torch.Tensor, group: object) -> torch.Tensor:
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, tensor, group=group)
    return torch.stack(parts)


def check_gradients(dp: DataParallelStep) -> GradientCheck:
    """Run the check (a collective: every rank of ``dp.group`` calls it together)."""
    dtype = dp.prepared.trainable[0].dtype
    rank_diff = mean_diff = 0.0
    unused_match = True
    for value in dp.values:
        own, own_present = _backward(dp, value, synced=False)
        reduced, present = _backward(dp, value, synced=True)
        owns, reduceds = _gather(own, dp.group), _gather(reduced, dp.group)
        owns_present, presents = _gather(own_present, dp.group), _gather(present, dp.group)
        mean = owns.float().mean(dim=0)
        reduceds = reduceds.float()
        scale = max(float(mean.abs().max()), 1e-30)
        rank_diff = max(rank_diff, float((reduceds - reduceds[0]).abs().max()) / scale)
        mean_diff = max(mean_diff, float((reduceds - mean).abs().max()) / scale)
        used_anywhere = owns_present.amax(dim=0)
        unused_match = unused_match and bool((presents == used_anywhere).all())
    tolerance = TOLERANCE.get(dtype, 1e-5)
    return GradientCheck(
        draws=len(dp.values),
        max_rank_difference=rank_diff,
        max_mean_difference=mean_diff,
        unused_match=unused_match,
        agree=unused_match and rank_diff <= tolerance and mean_diff <= tolerance,
    )
