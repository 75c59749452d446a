"""Small builders shared by the model tests (tiny configs, fixed seeds), and AdapterHub's adapter and fusion
computations written out from their config flags, as the reference the variant tests pin."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from adapterdrop.inputs import make_batch


def tiny_config(model_type: str = "bert", **overrides: object) -> PretrainedConfig:
    """A 4-layer, hidden-32 encoder config of ``model_type`` (dropout kept: tests switch to eval)."""
    kwargs = {
        "num_hidden_layers": 4,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 99,
        "max_position_embeddings": 64,
    }
    kwargs.update(overrides)
    return AutoConfig.for_model(model_type, **kwargs)


def token_ids(config: PretrainedConfig, batch: int = 3, seq: int = 12, seed: int = 0) -> torch.Tensor:
    """Random token ids for ``config`` (RoBERTa-style models keep clear of the padding id)."""
    ids = make_batch(config.vocab_size, batch, seq, seed=seed).input_ids
    return ids.clamp(min=3)


def roughen_norms(base: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Draw every LayerNorm's weight from N(1, 0.3²) and bias from N(0, 0.3²) (in place), so that a missing,
    extra or misplaced LayerNorm changes the output (a fresh LayerNorm is almost the identity after one)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in base.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.3 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator))
    return base


def loud(module: torch.nn.Module, std: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Redraw every parameter of ``module`` from N(0, std²) (in place), so adapters and fusion change the
    hidden states by O(1) instead of O(0.02) and a wrong formula shows above float32 rounding."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(std * torch.randn(parameter.shape, generator=generator))
    return module


# --- AdapterHub `adapters` written out independently, from its config flags -------------------------------
# The flags of src/adapters/configuration/adapter_config.py (SeqBnConfig, DoubleSeqBnConfig) and
# adapter_fusion_config.py (DynamicAdapterFusionConfig) that decide what is computed; the flags not listed
# keep BnConfig's defaults (scaling 1.0, dropout 0.0, no gating, no phm, no stochastic depth), which are
# identities. The functions follow Adapter.pre_forward / forward / post_forward and BertFusion.forward
# (src/adapters/methods/modeling.py) branch by branch for these flags; they never call adapterdrop.

SEQ_BN = {
    "original_ln_before": True,
    "original_ln_after": True,
    "residual_before_ln": True,
    "adapter_residual_before_ln": False,
    "ln_before": False,
    "ln_after": False,
    "mh_adapter": False,
    "output_adapter": True,
    "non_linearity": "relu",
}
DOUBLE_SEQ_BN = {**SEQ_BN, "original_ln_before": False, "mh_adapter": True, "non_linearity": "swish"}
DYNAMIC_FUSION = {
    "query": True,
    "key": True,
    "value": True,
    "query_before_ln": False,
    "residual_before": False,
    "temperature": False,
    "value_before_softmax": True,
}
_ACT = {"relu": F.relu, "swish": F.silu}

#: a bottleneck's weights: (W_down, b_down, W_up, b_up) in nn.Linear layout
AdapterWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
#: a fusion layer's weights: (W_query, b_query, W_key, b_key, W_value)
FusionWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
Close = Callable[[torch.Tensor, torch.Tensor, torch.nn.Module], torch.Tensor]


def adapter_weights(adapter: torch.nn.Module) -> AdapterWeights:
    """Detached copies of an adapter module's down and up projections."""
    return tuple(
        t.detach().clone()
        for t in (adapter.down.weight, adapter.down.bias, adapter.up.weight, adapter.up.bias)
    )


def fusion_weights(fusion: torch.nn.Module) -> FusionWeights:
    """Detached copies of a fusion layer's query, key and value projections (value without bias)."""
    assert fusion.value.bias is None
    tensors = (
        fusion.query.weight,
        fusion.query.bias,
        fusion.key.weight,
        fusion.key.bias,
        fusion.value.weight,
    )
    return tuple(t.detach().clone() for t in tensors)


def _bottleneck(weights: AdapterWeights, hidden: torch.Tensor, act: str) -> torch.Tensor:
    w_down, b_down, w_up, b_up = weights
    return F.linear(_ACT[act](F.linear(hidden, w_down, b_down)), w_up, b_up)


def _pre_forward(flags, hidden, input_tensor, layer_norm, fusion=None):
    """Adapter.pre_forward: (adapter input, fusion query, adapter residual)."""
    query = None
    if flags["residual_before_ln"] is True:
        residual = hidden
    if fusion is not None and fusion["query_before_ln"]:
        query = hidden
    if flags["original_ln_before"]:
        hidden = layer_norm(hidden + input_tensor)
    if not flags["residual_before_ln"]:
        residual = hidden
    if fusion is not None and not fusion["query_before_ln"]:
        query = hidden
    return hidden, query, residual


def _post_forward(flags, hidden, input_tensor, layer_norm):
    """Adapter.post_forward."""
    return layer_norm(hidden + input_tensor) if flags["original_ln_after"] else hidden


def adapterhub_adapter_layer(flags, weights: AdapterWeights, out, residual, layer_norm) -> torch.Tensor:
    """AdapterHub's bottleneck layer with one adapter (a ``Stack`` of one) for ``flags``."""
    assert not flags["ln_before"] and not flags["ln_after"], "no adapter LayerNorm in these configs"
    hidden, _, adapter_residual = _pre_forward(flags, out, residual, layer_norm)
    output = _bottleneck(weights, hidden, flags["non_linearity"])  # x scaling 1.0, dropout 0.0
    # the adapter residual, before or after the (absent) adapter LayerNorm ln_after
    output = output + adapter_residual
    return _post_forward(flags, output, residual, layer_norm)


def adapterhub_fusion_layer(
    flags, fusion, adapters: Sequence[AdapterWeights], weights: FusionWeights, out, residual, layer_norm
) -> torch.Tensor:
    """AdapterHub's bottleneck layer with a ``Fuse`` block (``compose_fuse`` + ``BertFusion``), eval mode."""
    assert fusion["query"] and fusion["key"] and fusion["value"] and not fusion["residual_before"]
    hidden, query, adapter_residual = _pre_forward(flags, out, residual, layer_norm, fusion)
    ups = torch.stack([_bottleneck(w, hidden, flags["non_linearity"]) for w in adapters])
    ups = ups.permute(1, 2, 0, 3)  # batch, tokens, adapters, features
    w_query, b_query, w_key, b_key, w_value = weights
    query_layer = F.linear(query, w_query, b_query)
    key_layer = F.linear(ups, w_key, b_key)
    value_layer = F.linear(ups, w_value) if fusion["value_before_softmax"] else ups
    scores = torch.squeeze(torch.matmul(query_layer.unsqueeze(2), key_layer.transpose(-2, -1)), dim=2)
    temperature = 50.0 if fusion["temperature"] else 1.0
    probs = torch.softmax(scores / temperature, dim=-1)
    context = torch.squeeze(torch.matmul(probs.unsqueeze(2), value_layer), dim=2)
    if not fusion["value_before_softmax"]:
        context = F.linear(context, w_value)
    context = context + adapter_residual
    return _post_forward(flags, context, residual, layer_norm)


def adapterhub_reference(base: PreTrainedModel, closers: dict[int, dict[str, Close]]) -> PreTrainedModel:
    """A copy of ``base`` run by `transformers` itself, whose ``BertSelfOutput`` ("attention") and
    ``BertOutput`` ("ffn") of layer i end with ``closers[i][position](x, input_tensor, LayerNorm)`` instead
    of ``LayerNorm(x + input_tensor)``, as AdapterHub's ``BertSelfOutputWithAdapters`` and
    ``BertOutputWithAdapters`` end with ``bottleneck_layer_forward(hidden_states, input_tensor, LayerNorm)``.
    """
    reference = copy.deepcopy(base)
    for index, layer in enumerate(reference.encoder.layer):
        for position, module in (("attention", layer.attention.output), ("ffn", layer.output)):
            close = closers.get(index, {}).get(position)
            if close is not None:
                module.forward = _closing_forward(module, close)
    return reference


def _closing_forward(module: torch.nn.Module, close: Close) -> Callable[..., torch.Tensor]:
    def forward(hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        out = module.dropout(module.dense(hidden_states))
        return close(out, input_tensor, module.LayerNorm)

    return forward
