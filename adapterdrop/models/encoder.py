"""Run a BERT-family encoder layer by layer, with adapter plug-ins closing its sub-layers.

The runner reads the weights of a `transformers` BERT-style model (BERT, RoBERTa, XLM-RoBERTa, ELECTRA,
CamemBERT: their layers are built from the same pieces) and computes each layer itself, so that variants
can place adapters without editing the shared model:

    a = attention_output(dropout(W_o · attention(h)), h, LN_attention)
    y = ffn_output(dropout(W_2 · act(W_1 · a)), a, LN_output)

Each hook receives the sub-layer output ``x``, the sub-layer input ``r`` (its residual) and the layer's own
LayerNorm module, and returns the block's output; without a plug-in (and by default) that is ``LN(x + r)``,
the `transformers` computation. These are the two places where BERT's ``BertSelfOutput`` and ``BertOutput``
finish, which is where AdapterHub's ``bottleneck_layer_forward(hidden_states, input_tensor, layer_norm)``
runs: a plug-in sees exactly what an AdapterHub adapter layer sees and may apply the LayerNorm more than
once (``seq_bn`` does; see :mod:`adapterdrop.models.adapters`).

Task forking: a plug-in may turn a ``(B, S, H)`` input into ``(T, B, S, H)`` (one copy per task). The rest
of that layer works on the 4-d tensor, and the runner folds the result into ``(T·B, S, H)`` for the layers
above, with the attention mask repeated to match. Layers below the fork run once.

Autograd: when gradients are on, the layers below the first layer that holds a trainable parameter (in
the base or in a plug-in) run under ``torch.no_grad()``, so they build no graph and keep no activations.

Named regions: the runner, the plug-ins and the variants run their parts through :func:`region`
(``embeddings``, ``shared_layers``, ``layer.i`` with ``attention``, ``attention_norm``, ``ffn``, ``ffn_norm``
inside, ``adapter``, ``fusion``, ``head``, ``loss``). Nothing traces them unless a profiler installs a
tracer (:func:`tracing_regions`, used by :mod:`adapterdrop.profile`); without one a region is one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel

from adapterdrop import testing_plant
from adapterdrop.models.presets import check_supported


class RegionTracer(Protocol):
    """Runs ``fn(*args)`` as the region ``name`` (nested in the regions running around it) and returns
    its result; :mod:`adapterdrop.profile` implements it (profiler ranges, FLOPs per region)."""

    def __call__(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any: ...


#: the tracer :func:`tracing_regions` installed, or None (the normal case: a region is one call)
_TRACER: RegionTracer | None = None


def region(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` as the named region ``name`` of a step; just ``fn(*args)`` when nothing traces."""
    if _TRACER is None:
        return fn(*args)
    return _TRACER(name, fn, args)


def as_region(module: nn.Module, name: str) -> None:
    """Make every call of ``module`` the region ``name`` (its positional arguments are the region's; keyword
    arguments pass through): how a model run by the ``transformers`` forward, not by this runner, shows its
    layers and adapters to the profiler. Costs one ``is None`` test per call when nothing traces."""
    forward = module.forward

    def traced(*args: Any, **kwargs: Any) -> Any:
        if _TRACER is None:
            return forward(*args, **kwargs)
        return _TRACER(name, lambda *positional: forward(*positional, **kwargs), args)

    module.forward = traced


@contextlib.contextmanager
def tracing_regions(tracer: RegionTracer) -> Iterator[None]:
    """Inside the block every :func:`region` runs through ``tracer``."""
    global _TRACER
    before, _TRACER = _TRACER, tracer
    try:
        yield
    finally:
        _TRACER = before


def add_and_norm(out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """``LN(x + r)``: how a BERT sub-layer closes without an adapter."""
    return norm(out + residual)


class LayerPlugin(nn.Module):
    """What a variant adds to one layer: how each sub-layer's output becomes its block's output.

    Both hooks take the sub-layer output ``out`` (after dense and dropout, ``(B, S, H)`` or ``(T, B, S, H)``
    after a fork), its input ``residual`` (same shape) and the layer's LayerNorm ``norm``; they return the
    block output, ``(B, S, H)`` or forked ``(T, B, S, H)``. Both default to ``LN(out + residual)``.
    ``forks`` is true for the plug-in whose adapter forks the batch into task copies.
    """

    forks: bool = False

    def attention_output(self, out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return add_and_norm(out, residual, norm)

    def ffn_output(self, out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return add_and_norm(out, residual, norm)


def build_base(config: PretrainedConfig, seed: int = 0) -> PreTrainedModel:
    """A frozen encoder with random weights (seeded) from ``config``; no pooler, nothing downloaded."""
    check_supported(config)
    torch.manual_seed(seed)
    base = AutoModel.from_config(config)
    if getattr(base, "pooler", None) is not None:
        base.pooler = None
    base.requires_grad_(False)
    return base


def num_layers(base: PreTrainedModel) -> int:
    """Number of transformer layers of ``base``."""
    return len(base.encoder.layer)


def attention_mask_bias(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A ``(B, 1, 1, S)`` additive mask (0 keep, dtype-min drop) from a ``(B, S)`` 0/1 mask, or None."""
    if attention_mask is None:
        return None
    keep = attention_mask[:, None, None, :].to(torch.bool)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


def _self_attention(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    attn = layer.attention.self
    batch, seq, width = hidden.shape
    heads = attn.num_attention_heads
    head_dim = width // heads

    def split(proj: nn.Linear) -> torch.Tensor:
        return proj(hidden).view(batch, seq, heads, head_dim).transpose(1, 2)

    context = F.scaled_dot_product_attention(
        split(attn.query),
        split(attn.key),
        split(attn.value),
        attn_mask=mask,
        dropout_p=attn.dropout.p if attn.training else 0.0,
        scale=head_dim**-0.5,
    )
    return context.transpose(1, 2).reshape(batch, seq, width)


def run_layer(
    layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None, plugin: LayerPlugin | None
) -> torch.Tensor:
    """One layer on ``(B, S, H)``; returns ``(B, S, H)``, or ``(T, B, S, H)`` if the plugin forks."""
    if testing_plant.PLANT is not None:  # a test-only planted slowdown (ADAPTERDROP_PLANT)
        return testing_plant.PLANT.layer(_layer_forward, layer, hidden, mask, plugin)
    return _layer_forward(layer, hidden, mask, plugin)


def _layer_forward(
    layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None, plugin: LayerPlugin | None
) -> torch.Tensor:
    close_attention = plugin.attention_output if plugin is not None else add_and_norm
    close_ffn = plugin.ffn_output if plugin is not None else add_and_norm
    attended = region("attention", _attention_block, layer, hidden, mask)
    attended = region("attention_norm", close_attention, attended, hidden, layer.attention.output.LayerNorm)
    ffn = region("ffn", _ffn_block, layer, attended)
    return region("ffn_norm", close_ffn, ffn, attended, layer.output.LayerNorm)


def _attention_block(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The attention sub-layer's output x: ``dropout(W_o · attention(h))``."""
    self_output = layer.attention.output
    return self_output.dropout(self_output.dense(_self_attention(layer, hidden, mask)))


def _ffn_block(layer: nn.Module, attended: torch.Tensor) -> torch.Tensor:
    """The feed-forward sub-layer's output x: ``dropout(W_2 · act(W_1 · a))``."""
    return layer.output.dropout(layer.output.dense(layer.intermediate(attended)))


def embed(base: PreTrainedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Token + position (+ type) embeddings, projected to the hidden size where the model does (ELECTRA)."""
    hidden = base.embeddings(input_ids=input_ids)
    project = getattr(base, "embeddings_project", None)
    return project(hidden) if project is not None else hidden


def plugins_by_layer(plugins: nn.ModuleDict, layers: int, drop: int = 0) -> list[LayerPlugin | None]:
    """Per-layer list from a ``ModuleDict`` keyed by layer index; layers below ``drop`` get None."""
    return [plugins[str(i)] if i >= drop and str(i) in plugins else None for i in range(layers)]


def _trains(module: nn.Module | None) -> bool:
    return module is not None and any(p.requires_grad for p in module.parameters())


def first_trainable_layer(base: PreTrainedModel, plugins: Sequence[LayerPlugin | None]) -> int:
    """Index of the lowest layer with a trainable parameter (0 if the embeddings train; L if none)."""
    if _trains(base.embeddings) or _trains(getattr(base, "embeddings_project", None)):
        return 0
    for index, (layer, plugin) in enumerate(zip(base.encoder.layer, plugins, strict=True)):
        if _trains(layer) or _trains(plugin):
            return index
    return len(plugins)


def encode(
    base: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    plugins: Sequence[LayerPlugin | None],
) -> torch.Tensor:
    """Last hidden states: ``(B, S, H)``, or ``(T·B, S, H)`` task-major once a plugin forked into T tasks.

    ``plugins[i]`` is layer i's plug-in or None (no adapter there). Layers below the first trainable layer
    run without autograd when gradients are enabled (see the module docstring). The layers below the layer
    whose plug-in forks run as the region ``shared_layers``.
    """
    if len(plugins) != num_layers(base):
        raise ValueError(f"{len(plugins)} plug-ins for {num_layers(base)} layers")
    hidden = region("embeddings", embed, base, input_ids)
    mask = attention_mask_bias(attention_mask, hidden.dtype)
    frozen_below = first_trainable_layer(base, plugins) if torch.is_grad_enabled() else 0
    fork = next((index for index, plugin in enumerate(plugins) if plugin is not None and plugin.forks), 0)
    if fork:
        shared = (base, hidden, mask, plugins, 0, fork, frozen_below)
        hidden, mask = region("shared_layers", _run_layers, *shared)
    hidden, _ = _run_layers(base, hidden, mask, plugins, fork, len(plugins), frozen_below)
    return hidden


def _run_layers(
    base: PreTrainedModel,
    hidden: torch.Tensor,
    mask: torch.Tensor | None,
    plugins: Sequence[LayerPlugin | None],
    start: int,
    stop: int,
    frozen_below: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Layers ``start..stop-1`` (see :func:`encode`); returns the hidden states and the (repeated) mask."""
    for index in range(start, stop):
        layer, plugin = base.encoder.layer[index], plugins[index]
        if index < frozen_below:
            with torch.no_grad():
                hidden = region(f"layer.{index}", run_layer, layer, hidden, mask, plugin)
        else:
            hidden = region(f"layer.{index}", run_layer, layer, hidden, mask, plugin)
        if hidden.dim() == 4:
            tasks = hidden.shape[0]
            hidden = hidden.flatten(0, 1)
            mask = mask.repeat(tasks, 1, 1, 1) if mask is not None else None
    return hidden, mask
