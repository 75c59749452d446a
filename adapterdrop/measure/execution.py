"""Execution modes: turn an eager :class:`~adapterdrop.measure.prepare.PreparedStep` into a compiled or a
CUDA-graphed one (``Scenario.exec``); :func:`~adapterdrop.measure.prepare.prepare_step` calls
:func:`apply_exec`, so the sweep, ``measure``, the bench suites, the profiler and the regression gate all
time the same step in every mode.

- ``eager``: the step as :mod:`adapterdrop.measure.prepare` builds it.
- ``compile[:mode=M]``: ``torch.compile(..., mode=M, dynamic=False)`` with the inductor backend over the
  step's forward: the variant's logits (infer, under ``torch.inference_mode()``) or its training loss
  (train; AOTAutograd compiles the backward with it). The optimizer step stays the eager AdamW (fused or
  foreach), as a user who compiles the model keeps it. Each step compiles an entry function with a code
  object of its own: dynamo keeps graphs on code objects, so the guards checked per call, the cache limit
  and every recompilation counted are this step's alone.
- ``cudagraph``: CUDA graphs (``torch.cuda.graph``) with static inputs (the group's one batch, on the GPU):
  the inference forward, or the whole training step (forward, backward and ``AdamW(capturable=True)``
  step, fused where supported) replayed as one graph. Autocast runs with its weight cache off, as capture
  requires. Each graph has a private memory pool.

A stochastic variant (robust AdapterDrop) gets one graph per value it draws (one compiled graph per n,
one CUDA graph per n). Its draw happens outside the compiled or graphed code, per step, uniform over
``draw_values()`` from a generator seeded with :data:`~adapterdrop.measure.prepare.SEED` (the law of the
eager step's own draws); a value pinned with the model's ``fixed_draw`` (the memory probe pins each in
turn) is used instead.

Compilation and capture happen here, before any timing: ``SETUP_CALLS`` steps per drawn value (the first
compiles; the rest let the guards settle and ``reduce-overhead`` record its graphs) or warm-up steps on a
side stream and the captures. Their seconds are ``setup_s``, recorded apart (``exec_setup_s``); afterwards
the trainable parameters and the optimizer state are put back as they were built, so a compiled or
graphed step starts where an eager one does.

What is counted how:

- FLOPs are counted on the eager step (:attr:`Execution.eager`): the same math, and ``FlopCounterMode``
  sees neither inside inductor's kernels nor inside a graph replay.
- Memory is the step's own. Compiled: probed like an eager step (:func:`~adapterdrop.measure.memory.
  step_memory`). Graphed: what the graphs' private pools reserve (``torch.cuda.memory_reserved`` across
  each capture), read at capture since a replay allocates nothing; the graphs of a stochastic variant are
  all alive at once, so their pools add up.
- Recompilations: compilations of a step's entry beyond one per drawn value, counted at the end (so a
  compile during warm-up or timing shows, and makes the record noisy); ``graphs`` counts every graph
  dynamo built for the step, graph breaks included (``torch._dynamo.utils.counters``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import random
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from adapterdrop.measure import step as steps
from adapterdrop.measure.memory import GradientBytes, MemoryParts, optimizer_state_bytes, tensor_bytes
from adapterdrop.measure.step import SEED, TORCH_DTYPES, precision_context
from adapterdrop.measure.types import Execution, PreparedStep
from adapterdrop.scenario import parse_exec
from adapterdrop.variants.base import VariantModel

__all__ = ["Execution", "apply_exec", "compare_outputs", "step_outputs"]

#: steps run per drawn value while compiling: the first compiles, the others check the guards hold
SETUP_CALLS = 3
#: eager steps per drawn value on a side stream before capture (cuBLAS handles, optimizer state)
CAPTURE_WARMUP = 3
#: how a graphed step's memory is read: bytes the graphs' private pools reserve
GRAPH_POOL_KIND = "cuda_graph_pool_reserved"
#: (rtol, atol) within which a mode's logits, loss and gradients must equal eager's, per dtype: float32
#: sums reordered by fusion; bf16 (8 mantissa bits) and fp16 (11) rounded at other points of a fused kernel
TOLERANCES: Mapping[str, tuple[float, float]] = {
    "fp32": (1e-4, 1e-5),
    "fp16": (5e-3, 1e-3),
    "bf16": (3e-2, 1e-2),
}
_ENTRIES = itertools.count()


def apply_exec(prepared: PreparedStep) -> PreparedStep:
    """``prepared`` itself for ``exec=eager``; else a step of the same model in the scenario's mode, with
    its :class:`Execution` (compiled, or captured, before this returns)."""
    kind, mode = parse_exec(prepared.scenario.exec)
    if kind == "compile":
        return _compiled(prepared, mode)
    if kind == "cudagraph":
        return _graphed(prepared)
    return prepared


# ---------------------------------------------------------------------------------------------- draws


class _Draws:
    """The value each step of a stochastic variant uses, chosen outside compiled or graphed code (see the
    module docstring). The model's ``fixed_draw`` is wrapped on the instance, so that a caller pinning the
    model (the memory probe, the FLOP count) pins this step too; the wrapper still pins the model."""

    def __init__(self, model: VariantModel) -> None:
        self.values = tuple(model.draw_values())
        self._pinned: int | None = None
        self._generator = random.Random(SEED)
        self.pin_model = model.fixed_draw
        model.fixed_draw = self.fixed_draw  # type: ignore[method-assign]

    @contextlib.contextmanager
    def fixed_draw(self, value: int) -> Iterator[None]:
        before, self._pinned = self._pinned, value
        try:
            with self.pin_model(value):
                yield
        finally:
            self._pinned = before

    def next(self) -> int:
        """The pinned value, else a fresh draw."""
        return self._pinned if self._pinned is not None else self._generator.choice(self.values)


def _draws_of(prepared: PreparedStep) -> _Draws | None:
    """The draws of a stochastic training step; None for inference and deterministic variants."""
    if prepared.loss is None or not prepared.model.draw_values():
        return None
    return _Draws(prepared.model)


def _pinned(prepared: PreparedStep, value: int | None) -> contextlib.AbstractContextManager:
    return prepared.model.fixed_draw(value) if value is not None else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------- state


class _Snapshot:
    """The trainable parameters as built, so that setup steps leave no trace: :meth:`restore` copies them
    back in place (a graph keeps their addresses) and zeroes the optimizer's state in place (AdamW's state
    starts at zero moments and step 0, so a zeroed state steps as a fresh one)."""

    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        self.params = params
        self.saved = [p.detach().clone() for p in params]

    def restore(self, optimizer: torch.optim.Optimizer | None) -> None:
        with torch.no_grad():
            for param, saved in zip(self.params, self.saved, strict=True):
                param.copy_(saved)
            if optimizer is not None:
                for state in optimizer.state.values():
                    for value in state.values():
                        if torch.is_tensor(value):
                            value.zero_()
                optimizer.zero_grad(set_to_none=True)


def _gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"grad.{name}": p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None
    }


# ---------------------------------------------------------------------------------------------- outputs


def step_outputs(prepared: PreparedStep) -> dict[str, torch.Tensor]:
    """Run one step of ``prepared`` in its mode (untimed) and return what it computed: ``logits`` for
    infer; for train ``loss`` and ``grad.<parameter name>`` of every parameter given a gradient (the step
    then updates the parameters as the timed step does). A stochastic variant uses its pinned value (pin
    it with ``prepared.model.fixed_draw``) or a draw."""
    if prepared.execution is not None:
        return prepared.execution.outputs()
    model, batch = prepared.model, prepared.batch
    if prepared.loss is None:
        with torch.inference_mode(), precision_context(prepared.scenario)():
            return {"logits": steps.forward(model, batch)}
    loss = prepared.loss()
    steps.backward(loss)
    outputs = {"loss": loss.detach(), **_gradients(model)}
    steps.update(prepared.optimizer)
    return outputs


def compare_outputs(
    expected: Mapping[str, torch.Tensor], actual: Mapping[str, torch.Tensor], dtype: str
) -> list[str]:
    """Where ``actual`` differs from ``expected`` beyond :data:`TOLERANCES` of ``dtype``: one line per
    output (a name missing on either side counts); empty when they agree."""
    rtol, atol = TOLERANCES[dtype]
    problems = [f"{name}: missing" for name in expected if name not in actual]
    problems += [f"{name}: not computed by eager" for name in actual if name not in expected]
    for name in expected.keys() & actual.keys():
        want, got = expected[name].float().cpu(), actual[name].float().cpu()
        if want.shape != got.shape:
            problems.append(f"{name}: shape {tuple(got.shape)}, eager {tuple(want.shape)}")
        elif not torch.allclose(got, want, rtol=rtol, atol=atol):
            worst = float((got - want).abs().max())
            problems.append(f"{name}: max |difference| {worst:.3g} beyond rtol {rtol}, atol {atol}")
    return sorted(problems)


# ---------------------------------------------------------------------------------------------- compile


def _entry(fn: Callable[[], Any]) -> Any:
    return fn()


def _fresh_entry() -> Callable[[Callable[[], Any]], Any]:
    """A copy of :func:`_entry` with a code object of its own (dynamo caches graphs per code object)."""
    name = f"adapterdrop_step_{next(_ENTRIES)}"
    code = _entry.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, _entry.__globals__, name)


def _cache_entries(code: types.CodeType) -> int:
    """Graphs dynamo holds for ``code`` (one per set of guards it compiled)."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    return len(_debug_get_cache_entry_list(code))


def _compile_counts() -> Counter:
    """What the compiler did in this process so far: graphs dynamo built, graph breaks, and inductor's
    on-disk cache hits and misses (a hit skips code generation, so setup seconds depend on it)."""
    from torch._dynamo.utils import counters

    return Counter(
        graphs=counters["stats"]["unique_graphs"],
        graph_breaks=sum(counters["graph_break"].values()),
        inductor_cache_hits=counters["inductor"]["fxgraph_cache_hit"],
        inductor_cache_misses=counters["inductor"]["fxgraph_cache_miss"],
    )


def _compiled(prepared: PreparedStep, mode: str) -> PreparedStep:
    """``prepared`` with its forward (infer) or training loss run through ``torch.compile``."""
    entry = _fresh_entry()
    compiled = torch.compile(entry, mode=mode, dynamic=False)
    model, precision = prepared.model, precision_context(prepared.scenario)
    draws = _draws_of(prepared)
    values = draws.values if draws else ()
    config = torch._dynamo.config  # one graph per value must fit (raised for the process, never lowered)
    config.cache_size_limit = max(config.cache_size_limit, len(values) + 8)

    if prepared.loss is None:

        def forward() -> torch.Tensor:
            return steps.forward(model, prepared.batch)  # returned, or the compiler would drop the work

        def infer() -> None:
            with torch.inference_mode(), precision():
                compiled(forward)

        def infer_outputs() -> dict[str, torch.Tensor]:
            with torch.inference_mode(), precision():  # cloned: reduce-overhead's graphs reuse outputs
                return {"logits": compiled(forward).clone()}

        step, outputs = infer, infer_outputs
    else:
        loss_fn, optimizer = prepared.loss, prepared.optimizer

        def compiled_loss() -> torch.Tensor:
            if draws is None:
                return compiled(loss_fn)
            with draws.pin_model(draws.next()):
                return compiled(loss_fn)

        def train() -> None:
            steps.train_step(compiled_loss, optimizer)

        def train_outputs() -> dict[str, torch.Tensor]:
            loss = compiled_loss()
            steps.backward(loss)
            values_out = {"loss": loss.detach().clone(), **_gradients(model)}
            steps.update(optimizer)
            return values_out

        step, outputs = train, train_outputs
    snapshot = _Snapshot(prepared.trainable)
    before = _compile_counts()
    started = time.perf_counter()
    for value in values or (None,):
        with _pinned(prepared, value):
            for _ in range(SETUP_CALLS):
                step()
    setup_s = time.perf_counter() - started
    snapshot.restore(prepared.optimizer)
    counts = _compile_counts()
    counts.subtract(before)

    def entries() -> int:
        return _cache_entries(entry.__code__)

    execution = Execution(
        eager=prepared,
        setup_s=setup_s,
        outputs=outputs,
        draws=values,
        info={"compile_mode": mode, "backend": "inductor", **counts, "setup_calls": SETUP_CALLS},
        compiled_entries=entries,
        entries_after_setup=entries(),
    )
    return dataclasses.replace(prepared, step=step, execution=execution)


# ---------------------------------------------------------------------------------------------- CUDA graphs


def capturable_optimizer(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, str]:
    """AdamW that a CUDA graph can capture (step counts on the GPU): fused where supported, else foreach."""
    try:
        return torch.optim.AdamW(params, lr=1e-4, fused=True, capturable=True), "AdamW(fused, capturable)"
    except RuntimeError:
        return torch.optim.AdamW(params, lr=1e-4, foreach=True, capturable=True), "AdamW(foreach, capturable)"


def _capture_precision(prepared: PreparedStep) -> Callable[[], contextlib.AbstractContextManager]:
    """The step's precision context with autocast's weight cache off (a cached cast would be captured)."""
    scenario = prepared.scenario
    if scenario.precision != "autocast":
        return contextlib.nullcontext
    dtype = TORCH_DTYPES[scenario.dtype]
    return lambda: torch.autocast("cuda", dtype=dtype, cache_enabled=False)


@dataclass
class _Captured:
    """One CUDA graph: its static outputs, the bytes its private pool reserves and its gradients hold."""

    graph: torch.cuda.CUDAGraph
    outputs: dict[str, torch.Tensor]
    pool_bytes: int
    peak_allocated_bytes: int
    grad_bytes: int


def _capture(device: torch.device, run: Callable[[], dict[str, torch.Tensor]], params: list) -> _Captured:
    """Capture ``run`` (its returned tensors stay as the graph's static outputs) and read its pool."""
    torch.cuda.synchronize(device)
    gc.collect()  # as torch.cuda.graph does on entry, so that its own freeing does not shrink the reading
    torch.cuda.empty_cache()
    reserved = torch.cuda.memory_reserved(device)
    torch.cuda.reset_peak_memory_stats(device)
    allocated = torch.cuda.memory_allocated(device)
    graph = torch.cuda.CUDAGraph()
    with GradientBytes(params) as grads, torch.cuda.graph(graph):
        outputs = run()
    torch.cuda.synchronize(device)
    return _Captured(
        graph,
        outputs,
        torch.cuda.memory_reserved(device) - reserved,
        torch.cuda.max_memory_allocated(device) - allocated,
        grads.bytes,
    )


def _side_stream_warmup(device: torch.device, run: Callable[[], object], times: int) -> None:
    """``run`` ``times`` times on a side stream, as capture requires (lazy initialisation off the graph)."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(times):
            run()
    torch.cuda.current_stream(device).wait_stream(stream)


def _profiler_ready_for_graphs() -> None:
    """Start the profiler once before the first capture: a graph captured before the profiler's first use
    loses its kernels in later profiles (the runner's launch probe profiles graph replays); what
    ``torch.profiler._utils._init_for_cuda_graphs`` does, through the public API."""
    global _PROFILER_READY
    if not _PROFILER_READY:
        activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=activities):
            pass
        _PROFILER_READY = True


_PROFILER_READY = False


def _graphed(prepared: PreparedStep) -> PreparedStep:
    """``prepared`` as CUDA graph replays: one graph, or one per drawn value of a stochastic variant."""
    _profiler_ready_for_graphs()
    device, model, batch = prepared.device, prepared.model, prepared.batch
    precision = _capture_precision(prepared)
    params_bytes = tensor_bytes(model.parameters())
    started = time.perf_counter()
    if prepared.loss is None:

        def forward() -> dict[str, torch.Tensor]:
            with torch.inference_mode(), precision():
                return {"logits": steps.forward(model, batch)}

        _side_stream_warmup(device, forward, CAPTURE_WARMUP)
        graphs = {None: _capture(device, forward, [])}
        optimizer, optimizer_name, draws = None, None, None
    else:
        optimizer, optimizer_name = capturable_optimizer(prepared.trainable)
        draws = _draws_of(prepared)

        def train_step() -> dict[str, torch.Tensor]:  # zero_grad stays out of the graph (see below)
            with precision():
                loss = steps.loss(model, batch)
            steps.backward(loss)
            optimizer.step()
            return {"loss": loss.detach()}

        def warm(value: int | None) -> None:
            with _pinned(prepared, value):
                train_step()
            optimizer.zero_grad(set_to_none=True)

        snapshot = _Snapshot(prepared.trainable)
        for value in draws.values if draws else (None,):
            _side_stream_warmup(device, lambda value=value: warm(value), CAPTURE_WARMUP)
        snapshot.restore(optimizer)
        graphs = {}
        for value in draws.values if draws else (None,):
            optimizer.zero_grad(set_to_none=True)  # each graph allocates its own gradients in its pool
            with _pinned(prepared, value):
                graphs[value] = _capture(device, train_step, prepared.trainable)
            graphs[value].outputs.update(_gradients_as_captured(model))
        optimizer.zero_grad(set_to_none=True)
    setup_s = time.perf_counter() - started

    if draws is None:
        step = graphs[None].graph.replay
    else:

        def step() -> None:
            graphs[draws.next()].graph.replay()

    def outputs() -> dict[str, torch.Tensor]:
        captured = graphs[draws.next() if draws else None]
        captured.graph.replay()
        return {name: tensor.clone() for name, tensor in captured.outputs.items()}

    optimizer_bytes = optimizer_state_bytes(optimizer)
    values = draws.values if draws else ()
    execution = Execution(
        eager=prepared,
        setup_s=setup_s,
        outputs=outputs,
        draws=values,
        memory=_graph_memory(graphs, params_bytes, optimizer_bytes),
        info={
            "graphs": len(graphs),
            "graph_pool_bytes": {str(k): c.pool_bytes for k, c in graphs.items()},
            "graph_peak_allocated_bytes": {str(k): c.peak_allocated_bytes for k, c in graphs.items()},
            "capture_warmup_steps": CAPTURE_WARMUP,
            "static_inputs": "the group's batch, captured in place (no copy per step)",
        },
    )
    if optimizer is None:
        return dataclasses.replace(prepared, step=step, execution=execution)
    return dataclasses.replace(
        prepared, step=step, optimizer=optimizer, optimizer_name=optimizer_name, execution=execution
    )


def _gradients_as_captured(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The gradient tensors a capture allocated (static: every replay rewrites them), by name."""
    return {f"grad.{name}": p.grad for name, p in model.named_parameters() if p.grad is not None}


def _graph_memory(graphs: Mapping[int | None, _Captured], params: int, optimizer: int) -> dict[str, Any]:
    """Memory fields of a graphed step: parameters, optimizer state and every graph's pool (all alive at
    once; a pool holds its graph's gradients and activations)."""
    pools = sum(c.pool_bytes for c in graphs.values())
    grads = sum(c.grad_bytes for c in graphs.values())
    fields = MemoryParts.from_step(params, optimizer, grads, pools, GRAPH_POOL_KIND).fields()
    if None not in graphs:
        fields["peak_memory_expected_bytes"] = fields["peak_memory_bytes"]
        fields["memory_by_draw"] = {str(k): params + optimizer + c.pool_bytes for k, c in graphs.items()}
    return fields
