"""Measure one comparison group: build every variant on one shared base, then time them interleaved.

For a group (scenarios that differ only in their variant) the runner

1. builds the frozen base once (``build_base``), casts it (native precision) and moves it to the device;
2. makes one input batch (:mod:`adapterdrop.inputs`);
3. per variant: builds it on the shared base (``full`` copies it), counts its FLOPs in an untimed pass,
   warms it up, measures its peak memory over a few steps, and calibrates the calls per sample;
4. times all variants in rotated, interleaved rounds (:func:`adapterdrop.measure.timing.interleave`);
5. returns one :class:`Record` per scenario, with speedup = baseline median / variant median,
   ideal_speedup = baseline FLOPs / variant FLOPs (``flops_step``: a training step for train, a forward
   for infer) and efficiency = speedup / ideal_speedup.

A variant that runs out of memory is recorded as ``oom``, one that fails as ``error`` (one-line message),
an inference-only variant in a train group as ``skipped``; the other variants of the group go on.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import torch

from adapterdrop.inputs import Batch, make_batch
from adapterdrop.measure.flops import count_flops
from adapterdrop.measure.memory import peak_memory
from adapterdrop.measure.timing import TimingConfig, calibrate, fixed_threads, interleave, median_iqr
from adapterdrop.models.presets import model_config
from adapterdrop.scenario import Record, Scenario
from adapterdrop.variants import VariantModel, build_base, build_variant

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: steps of the untimed memory pass (after warm-up and the FLOP pass, so allocations are steady)
MEMORY_STEPS = 1
#: training steps whose FLOPs are averaged for a variant that draws its computation per step
#: (``VariantModel.stochastic``: robust AdapterDrop); a deterministic variant's step is counted once
STOCHASTIC_FLOP_STEPS = 16
SEED = 0


@dataclass
class _Prepared:
    """A built, warmed-up variant ready to be timed."""

    model: VariantModel
    step: Callable[[], None]
    number: int
    values: dict[str, Any]


def is_oom(exc: BaseException) -> bool:
    """True for an accelerator out-of-memory error or a failed host allocation."""
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


#: longest error message kept in a record (CUDA's out-of-memory advice runs to 600 characters)
MAX_ERROR_CHARS = 200


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, cut to :data:`MAX_ERROR_CHARS`."""
    text = str(exc).strip()
    line = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def skipped_record(scenario: Scenario, why: str, env: dict[str, Any] | None = None) -> Record:
    """A ``skipped`` record of ``scenario`` with the reason."""
    return Record.for_scenario(scenario, "skipped", error=why, env=env or {}, created_at=now_iso())


def make_optimizer(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, str]:
    """AdamW in its fastest implementation for these parameters: fused where supported, else foreach."""
    try:
        return torch.optim.AdamW(params, lr=1e-4, fused=True), "AdamW(fused)"
    except RuntimeError:
        return torch.optim.AdamW(params, lr=1e-4, foreach=True), "AdamW(foreach)"


def _precision_context(
    scenario: Scenario, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager]:
    if scenario.precision == "autocast":
        return lambda: torch.autocast(device.type, dtype=TORCH_DTYPES[scenario.dtype])
    return contextlib.nullcontext


def _step_and_flops(
    scenario: Scenario, model: VariantModel, batch: Batch, device: torch.device
) -> tuple[Callable[[], None], dict[str, Any]]:
    """The callable that runs one step, and the step's FLOPs, parameter counts and optimizer name."""
    precision = _precision_context(scenario, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    values: dict[str, Any] = {
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in trainable),
    }
    if scenario.phase == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode(), precision():
                model(batch.input_ids)

        values["flops_forward"] = values["flops_step"] = count_flops(infer)
        return infer, values

    if not trainable:
        raise RuntimeError("the variant has no trainable parameters")
    model.train()
    optimizer, values["optimizer"] = make_optimizer(trainable)

    def forward() -> torch.Tensor:
        with precision():
            return model.loss(batch.input_ids, batch.labels)

    def train() -> None:
        forward().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    counts = [_count_training_flops(forward) for _ in range(STOCHASTIC_FLOP_STEPS if model.stochastic else 1)]
    forward_flops = round(sum(c[0] for c in counts) / len(counts))
    backward_flops = round(sum(c[1] for c in counts) / len(counts))
    optimizer.zero_grad(set_to_none=True)
    values["flops_forward"] = forward_flops
    values["flops_step"] = forward_flops + backward_flops
    return train, values


def _count_training_flops(forward: Callable[[], torch.Tensor]) -> tuple[int, int]:
    """FLOPs of the loss's forward and of its backward (gradients are left for the caller to clear)."""
    loss: list[torch.Tensor] = []
    forward_flops = count_flops(lambda: loss.append(forward()))
    backward_flops = count_flops(lambda: loss[0].backward())
    return forward_flops, backward_flops


def _prepare(
    scenario: Scenario, config: Any, base: torch.nn.Module, batch: Batch, timing: TimingConfig
) -> _Prepared:
    device = torch.device(scenario.device)
    model = build_variant(scenario.variant, config, base=base, seed=SEED)
    if scenario.precision == "native":
        model.to(device=device, dtype=TORCH_DTYPES[scenario.dtype])
    else:
        model.to(device=device)
    values: dict[str, Any] = {"variant_info": model.describe()}
    if scenario.phase == "train" and not model.supports_training:
        return _Prepared(
            model,
            lambda: None,
            0,
            {**values, "status": "skipped", "error": "inference-only variant in a train phase"},
        )
    step, counted = _step_and_flops(scenario, model, batch, device)
    values.update(counted)
    for _ in range(timing.warmup_steps):
        step()
    values["peak_memory_bytes"], values["memory_kind"] = peak_memory(step, MEMORY_STEPS, device)
    number = calibrate(step, scenario.threads, timing.min_sample_time_s)
    return _Prepared(model, step, number, values)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_group(
    scenarios: Sequence[Scenario],
    timing: TimingConfig,
    *,
    baseline: str | None = None,
    env: dict[str, Any] | None = None,
) -> list[Record]:
    """Measure ``scenarios`` (same cell, different variants) interleaved; one record each, in order.

    ``baseline`` names the variant the others are compared with (no speedups if it is absent or failed).
    """
    first = scenarios[0]
    if any(s.group != first.group for s in scenarios):
        raise ValueError("measure_group needs scenarios that differ only in their variant")
    device = torch.device(first.device)
    env = env or {}
    outcome: dict[str, dict[str, Any]] = {}
    prepared: dict[str, _Prepared] = {}

    def failed(variant: str, exc: BaseException) -> None:
        prepared.pop(variant, None)
        _free(device)
        outcome[variant] = {"status": "oom" if is_oom(exc) else "error", "error": one_line(exc)}

    with fixed_threads(first.threads):
        config = model_config(first.model)
        torch.manual_seed(SEED)
        base = build_base(config, seed=SEED)
        base.to(device=device, dtype=TORCH_DTYPES[first.dtype] if first.precision == "native" else None)
        batch = make_batch(config.vocab_size, first.batch_size, first.seq_len, first.device, seed=SEED)
        for scenario in scenarios:
            try:
                ready = _prepare(scenario, config, base, batch, timing)
            except Exception as exc:  # recorded as the variant's status; the group goes on
                failed(scenario.variant, exc)
                continue
            if ready.values.get("status") == "skipped":
                outcome[scenario.variant] = ready.values
            else:
                prepared[scenario.variant] = ready
        samples = interleave(
            {name: p.step for name, p in prepared.items()},
            {name: p.number for name, p in prepared.items()},
            first.threads,
            timing.rounds,
            on_error=failed,
        )
    for name, times in samples.items():
        median, iqr = median_iqr(times)
        outcome[name] = {
            **prepared[name].values,
            "status": "ok",
            "time_median_s": median,
            "time_iqr_s": iqr,
            "time_samples_s": times,
            "throughput_samples_s": first.batch_size / median,
            "throughput_tokens_s": first.batch_size * first.seq_len / median,
            "timing": {
                "rounds": timing.rounds,
                "calls_per_sample": prepared[name].number,
                "min_sample_time_s": timing.min_sample_time_s,
                "warmup_steps": timing.warmup_steps,
                "timer": "torch.utils.benchmark.Timer.timeit",
            },
        }
    _add_ratios(outcome, baseline)
    created = now_iso()
    return [Record.for_scenario(s, env=env, created_at=created, **outcome[s.variant]) for s in scenarios]


def _add_ratios(outcome: dict[str, dict[str, Any]], baseline: str | None) -> None:
    """speedup, ideal_speedup and efficiency of every ok variant against an ok baseline."""
    base = outcome.get(baseline) if baseline is not None else None
    if base is None or base["status"] != "ok":
        return
    for values in outcome.values():
        if values["status"] != "ok":
            continue
        values["speedup"] = base["time_median_s"] / values["time_median_s"]
        if values["flops_step"] and base["flops_step"]:
            values["ideal_speedup"] = base["flops_step"] / values["flops_step"]
            values["efficiency"] = values["speedup"] / values["ideal_speedup"]
