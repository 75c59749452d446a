"""Copies of a model's module structure that share its weights, so that N implementations (or N merged
adapters) side by side hold one set of base weights, as a server does."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from itertools import chain

import torch
from torch import nn


def sharing_copy(model: nn.Module, own: Iterable[torch.Tensor] = ()) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are ``model``'s own tensors, except the tensors
    in ``own``, which are copied (the ones the caller will change in place)."""
    owned = {id(tensor) for tensor in own}
    shared = {id(t): t for t in chain(model.parameters(), model.buffers()) if id(t) not in owned}
    return copy.deepcopy(model, memo=shared)
