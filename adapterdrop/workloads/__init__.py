"""Workloads: the step a scenario runs, by model family and ``phase``, and what one step produces.

:data:`WORKLOADS` lists every workload, one line each (a new one is one module plus one line here):

- encoder: ``train``, ``infer`` (:mod:`.classify`; their steps are built by
  :mod:`adapterdrop.measure.prepare`);
- decoder: ``train`` (:mod:`.train`: causal-LM loss and AdamW), ``prefill`` (:mod:`.prefill`: a prompt into
  the KV cache), ``decode`` (:mod:`.decode`: one new token against a cache of P tokens).

:func:`prepare_step` builds a decoder scenario's variant and step; :func:`workload_fields` gives the record
fields a workload adds (tokens per step, the KV cache's bytes, decode's bytes per token). Importing this
package registers causal-aware attention FLOP formulas (:mod:`.attention_flops`).
"""

from __future__ import annotations

from typing import Any

from adapterdrop.errors import InferenceOnlyError, WorkloadError
from adapterdrop.families import family_of, resolve
from adapterdrop.families.decoder import kv_cache_bytes
from adapterdrop.families.decoder_variants import build_decoder_variant
from adapterdrop.measure.step import SEED, TORCH_DTYPES
from adapterdrop.measure.types import GroupContext, PreparedStep
from adapterdrop.scenario import Scenario
from adapterdrop.workloads import attention_flops, classify, decode, prefill, train
from adapterdrop.workloads.base import Produced, Workload

#: every workload by (family, name)
WORKLOADS: dict[tuple[str, str], Workload] = {
    (w.family, w.name): w
    for w in (classify.TRAIN, classify.INFER, train.WORKLOAD, prefill.WORKLOAD, decode.WORKLOAD)
}


def workloads_of(family: str) -> list[str]:
    """The workload names of ``family``."""
    return [name for fam, name in WORKLOADS if fam == family]


def workload_of(model: str, phase: str) -> Workload:
    """The workload ``phase`` of ``model``'s family; :class:`WorkloadError` (one line) if it has none."""
    family = family_of(model).name
    workload = WORKLOADS.get((family, phase))
    if workload is None:
        valid = ", ".join(workloads_of(family))
        raise WorkloadError(f"{model} (the {family} family) has no workload '{phase}' (valid: {valid})")
    return workload


def check_positions(model: str, phase: str, seq_len: int) -> None:
    """:class:`WorkloadError` unless ``seq_len`` tokens (and decode's new token) fit ``model``'s positions."""
    family, config = resolve(model)
    limit = family.max_positions(config)
    needed = seq_len + workload_of(model, phase).extra_positions
    if needed > limit:
        what = "a prompt of" if phase in ("prefill", "decode") else "a sequence of"
        extra = " and its new token" if needed > seq_len else ""
        raise WorkloadError(f"{what} {seq_len} tokens{extra} does not fit {model}: it has {limit} positions")


def produced(scenario: Scenario) -> Produced:
    """What one step of ``scenario`` produces (samples and tokens: the numerators of its throughputs)."""
    return workload_of(scenario.model, scenario.phase).produced(scenario)


def prepare_step(scenario: Scenario, context: GroupContext) -> PreparedStep | None:
    """The eager step of a scenario whose workload this package builds (the decoder's), its variant built on
    the group's base, cast to the scenario's dtype for native precision; None for the encoder's workloads
    (:mod:`adapterdrop.measure.prepare` builds those). :class:`InferenceOnlyError` for a training scenario
    of a variant that only runs inference."""
    workload = workload_of(scenario.model, scenario.phase)
    if workload.prepare is None:
        return None
    model = build_decoder_variant(scenario.variant, context.config, context.base, SEED, train=workload.trains)
    if workload.trains and not model.supports_training:
        raise InferenceOnlyError(f"{scenario.variant} is an inference-only variant")
    dtype = TORCH_DTYPES[scenario.dtype] if scenario.precision == "native" else None
    model.to(device=context.device, dtype=dtype)
    return workload.prepare(scenario, model, context)


def workload_fields(prepared: PreparedStep) -> dict[str, Any]:
    """Record fields of a prepared step's workload: ``tokens_per_step``; for prefill and decode
    ``memory_kv_cache_bytes`` (prefill: the cache its step fills, P tokens; decode: the cache it holds,
    P + 1 positions); for decode ``bytes_per_token`` (:func:`.decode.bytes_per_step` / B)."""
    scenario = prepared.scenario
    values: dict[str, Any] = {"tokens_per_step": produced(scenario).tokens}
    if scenario.phase in ("prefill", "decode"):
        lm = prepared.model.lm
        element = next(lm.parameters()).element_size()
        tokens = scenario.seq_len + workload_of(scenario.model, scenario.phase).extra_positions
        values["memory_kv_cache_bytes"] = kv_cache_bytes(lm.config, scenario.batch_size, tokens, element)
    if scenario.phase == "decode":
        values["bytes_per_token"] = decode.bytes_per_step(prepared.model.lm, scenario) / scenario.batch_size
    return values


def bandwidth_fields(
    prepared: PreparedStep, time_median_s: float, bandwidth_bytes_s: float | None
) -> dict[str, Any]:
    """``bandwidth_utilization`` of a decode step that took ``time_median_s`` on a device of measured
    bandwidth ``bandwidth_bytes_s`` (empty for other workloads or without a bandwidth)."""
    if prepared.scenario.phase != "decode" or not bandwidth_bytes_s:
        return {}
    read = decode.bytes_per_step(prepared.model.lm, prepared.scenario)
    return {"bandwidth_utilization": decode.bandwidth_utilization(read, time_median_s, bandwidth_bytes_s)}


__all__ = [
    "WORKLOADS",
    "Produced",
    "Workload",
    "attention_flops",
    "bandwidth_fields",
    "check_positions",
    "prepare_step",
    "produced",
    "workload_fields",
    "workload_of",
    "workloads_of",
]
