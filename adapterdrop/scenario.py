"""What one measurement is (`Scenario`) and what it produced (`Record`, one JSON line).

The record schema is the contract in docs/architecture.md: flat fields so that
``pandas.read_json(path, lines=True)`` gives one column per field; only ``variant_info`` and
``env`` are nested objects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from adapterdrop.errors import AdapterDropError

#: schema of the records written now; 1 lacks run ids, intervals, load and the memory parts, and is still read
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
#: the workload of a scenario (:mod:`adapterdrop.workloads`): ``train`` and ``infer`` of the encoder family
#: (classification), ``train`` (causal-LM loss), ``prefill`` and ``decode`` of the decoder family
PHASES = ("train", "infer", "prefill", "decode")
DTYPES = ("fp32", "fp16", "bf16")
PRECISIONS = ("native", "autocast")
STATUSES = ("ok", "oom", "error", "skipped")
# Statuses that a rerun does not measure again (an error may be a bug that was fixed since).
FINAL_STATUSES = frozenset({"ok", "oom", "skipped"})
#: how a data-parallel run treats parameters that a step leaves without a gradient (robust AdapterDrop):
#: ``find`` = DDP's find_unused_parameters=True; ``per-draw`` = one DDP wrapper per drawn value, each over
#: the parameters that value trains (see docs/distributed.md); empty: no DDP
DDP_UNUSED_MODES = ("", "find", "per-draw")
#: execution modes (docs/execution.md): eager PyTorch, ``torch.compile`` (inductor), CUDA graph replay
EXECS = ("eager", "compile", "cudagraph")
#: ``torch.compile`` modes, ``compile:mode=M``; ``default`` is left out of the canonical name
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class ScenarioError(AdapterDropError):
    """A scenario field has a value the harness cannot measure (message is one line)."""


def parse_exec(text: str) -> tuple[str, str]:
    """``eager``, ``cudagraph``, ``compile`` or ``compile:mode=M`` -> (mode of execution, torch.compile
    mode: ``default`` unless given; empty for eager and cudagraph). :class:`ScenarioError` otherwise."""
    kind, colon, option = str(text).partition(":")
    if kind not in EXECS:
        raise ScenarioError(f"unknown exec {text!r}; valid: eager, compile[:mode=M], cudagraph")
    if kind != "compile":
        if colon:
            raise ScenarioError(f"exec {kind!r} takes no options, got {text!r}")
        return kind, ""
    if not colon:
        return kind, "default"
    name, equals, mode = option.partition("=")
    if name != "mode" or not equals or mode not in COMPILE_MODES:
        raise ScenarioError(f"exec {text!r}: the one option is mode=M, M one of {', '.join(COMPILE_MODES)}")
    return kind, mode


def canonical_exec(text: str) -> str:
    """The name records store: ``compile:mode=default`` is ``compile``."""
    kind, mode = parse_exec(text)
    return f"compile:mode={mode}" if mode not in ("", "default") else kind


def default_precision(phase: str, dtype: str, requested: str | None = None) -> str:
    """fp32 is always native; fp16/bf16 run as ``requested`` if given, else under autocast for training
    and native for every other workload (inference, prefill, decode)."""
    if dtype == "fp32":
        return "native"
    if requested:
        return requested
    return "autocast" if phase == "train" else "native"


@dataclass(frozen=True)
class Scenario:
    """One cell of a sweep: a variant, in one phase, at one input size, on one device."""

    model: str = field(metadata={"help": "model preset name, e.g. bert-small"})
    variant: str = field(metadata={"help": "canonical variant name, e.g. adapterdrop:n=5"})
    phase: str = field(
        metadata={
            "help": "the workload: train (forward+backward+optimizer step), infer (forward), prefill (a "
            "prompt into the KV cache) or decode (one new token per sequence against the cache)"
        }
    )
    batch_size: int = field(metadata={"help": "sequences per step"})
    seq_len: int = field(
        metadata={"help": "tokens per sequence (no padding); prefill: the prompt; decode: the cached tokens"}
    )
    device: str = field(default="cpu", metadata={"help": "cpu or cuda:N"})
    dtype: str = field(default="fp32", metadata={"help": "fp32, fp16 or bf16"})
    precision: str = field(default="native", metadata={"help": "native (weights cast) or autocast"})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads"})
    comparison: str = field(default="adhoc", metadata={"help": "comparison name from the preset"})
    baseline: str = field(default="", metadata={"help": "canonical name of the group's baseline"})
    world_size: int = field(default=1, metadata={"help": "processes training data-parallel (DDP)"})
    backend: str = field(default="", metadata={"help": "DDP's torch.distributed backend; empty: no DDP"})
    bucket_cap_mb: int = field(default=0, metadata={"help": "DDP's gradient bucket cap in MiB; 0: no DDP"})
    ddp_unused: str = field(
        default="", metadata={"help": "find or per-draw: DDP and parameters without gradient; empty: no DDP"}
    )
    exec: str = field(
        default="eager", metadata={"help": "eager, compile[:mode=M] (torch.compile) or cudagraph"}
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "exec", canonical_exec(self.exec))
        if self.exec == "cudagraph" and not str(self.device).startswith("cuda"):
            raise ScenarioError(
                f"exec cudagraph needs a CUDA device, not {self.device!r}: use eager or compile there"
            )
        if self.phase not in PHASES:
            raise ScenarioError(f"unknown phase {self.phase!r} (choose from {', '.join(PHASES)})")
        if self.dtype not in DTYPES:
            raise ScenarioError(f"unknown dtype {self.dtype!r} (choose from {', '.join(DTYPES)})")
        if self.precision not in PRECISIONS:
            raise ScenarioError(f"unknown precision {self.precision!r} (choose from {', '.join(PRECISIONS)})")
        if self.dtype == "fp32" and self.precision != "native":
            raise ScenarioError("fp32 has no autocast mode; use precision native")
        if self.ddp_unused not in DDP_UNUSED_MODES:
            raise ScenarioError(f"unknown ddp_unused {self.ddp_unused!r} (choose from find, per-draw)")
        cap = self.bucket_cap_mb
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ScenarioError(f"bucket cap must be a non-negative integer (MiB), got {cap!r}")
        for name in ("batch_size", "seq_len", "threads", "world_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScenarioError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")

    def _fields(self, *, with_variant: bool) -> dict[str, Any]:
        """The fields a key hashes: every field of schema 1, and a later field only where it differs from
        its default, so adding a defaulted field leaves every stored key as it was."""
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name in KEY_FIELDS_V1 or getattr(self, f.name) != f.default
        }
        if not with_variant:
            del data["variant"]
        return data

    @property
    def key(self) -> str:
        """sha1 of the canonical JSON of the scenario (see :meth:`_fields`): the identity used for resume."""
        return _sha1(self._fields(with_variant=True))

    @property
    def group(self) -> str:
        """Id of the interleaved comparison group: the scenario without its variant (12 hex digits)."""
        return _sha1(self._fields(with_variant=False))[:12]


def _sha1(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()


#: the scenario fields of schema 1, always hashed into a key; a field added since is hashed only when it
#: differs from its default (a new field needs a default)
KEY_FIELDS_V1 = frozenset(
    {
        "model",
        "variant",
        "phase",
        "batch_size",
        "seq_len",
        "device",
        "dtype",
        "precision",
        "threads",
        "comparison",
        "baseline",
    }
)
SCENARIO_FIELDS = tuple(f.name for f in dataclasses.fields(Scenario))


@dataclass
class Record:
    """One measured (or failed, or skipped) scenario; written as one JSON line.

    Times are seconds per step (one forward for infer, one training step for train, one prompt into the
    cache for prefill, one new token per sequence for decode); throughputs are samples/s and tokens/s, of
    what the workload produces (:func:`adapterdrop.workloads.produced`); FLOPs count 2 per multiply-add
    (not MACs); memory is bytes. Every ratio (``speedup``) refers to the baseline record with the same
    ``run_id``.
    """

    model: str
    variant: str
    phase: str
    batch_size: int
    seq_len: int
    device: str
    dtype: str
    precision: str
    threads: int
    comparison: str
    baseline: str
    status: str = field(metadata={"help": "ok, oom, error or skipped"})
    world_size: int = 1
    backend: str = ""
    bucket_cap_mb: int = 0
    ddp_unused: str = ""
    exec: str = "eager"
    key: str = ""
    group: str = ""
    run_id: str = field(default="", metadata={"help": "id of the interleaved measurement (one process)"})
    schema: int = SCHEMA_VERSION
    error: str | None = field(default=None, metadata={"help": "one-line reason for error/oom/skipped"})
    time_median_s: float | None = None
    time_iqr_s: float | None = None
    time_samples_s: list[float] = field(default_factory=list)
    throughput_samples_s: float | None = None
    throughput_tokens_s: float | None = None
    flops_forward: int | None = None
    flops_step: int | None = None
    params_total: int | None = None
    params_trainable: int | None = None
    peak_memory_bytes: int | None = field(
        default=None, metadata={"help": "a step's total: params + optimizer state + grads + activations"}
    )
    memory_params_bytes: int | None = None
    memory_optimizer_bytes: int | None = None
    memory_grads_bytes: int | None = None
    memory_activations_bytes: int | None = field(
        default=None, metadata={"help": "the rest of the step's peak: saved activations and temporaries"}
    )
    peak_memory_expected_bytes: int | None = field(
        default=None, metadata={"help": "a stochastic variant: mean total over its equally likely draws"}
    )
    memory_kv_cache_bytes: int | None = field(
        default=None,
        metadata={"help": "prefill/decode: keys and values the cache holds (prefill: made by the step)"},
    )
    tokens_per_step: int | None = field(
        default=None, metadata={"help": "tokens a step produces or trains on (decode: one per sequence)"}
    )
    bytes_per_token: float | None = field(
        default=None, metadata={"help": "decode: weights and cache read per new token (bytes)"}
    )
    bandwidth_utilization: float | None = field(
        default=None, metadata={"help": "decode: bytes read per step / time / the measured bandwidth"}
    )
    memory_kind: str | None = field(
        default=None, metadata={"help": "how the transient peak was read: cuda_max_allocated, ..."}
    )
    speedup: float | None = field(default=None, metadata={"help": "baseline median / this median"})
    speedup_ci: list[float] | None = field(
        default=None, metadata={"help": "95% interval of the speedup (bootstrap over paired rounds)"}
    )
    ideal_speedup: float | None = field(default=None, metadata={"help": "baseline FLOPs / this FLOPs"})
    efficiency: float | None = field(default=None, metadata={"help": "speedup / ideal_speedup"})
    achieved_flops_s: float | None = field(
        default=None, metadata={"help": "flops_step / time_median_s: FLOP/s (2 per multiply-add)"}
    )
    mfu: float | None = field(default=None, metadata={"help": "achieved_flops_s / peak_flops_s"})
    peak_flops_s: float | None = field(
        default=None, metadata={"help": "the device's dense peak FLOP/s in the dtype its matmuls run in"}
    )
    peak_flops_source: str | None = field(
        default=None, metadata={"help": "published: <GPU datasheet> or measured: <CPU matmul, cached>"}
    )
    launch_bound: bool | None = field(
        default=None, metadata={"help": "GPU idle between kernels for >= half a step; None on the CPU"}
    )
    launch: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "GPU idle share, kernels per step; on the CPU why n/a"}
    )
    comm_bytes_per_step: int | None = field(
        default=None, metadata={"help": "DDP: gradient bytes a rank all-reduces per step (comm hook)"}
    )
    comm_time_s: float | None = field(
        default=None, metadata={"help": "DDP: median seconds to all-reduce one step's buckets alone"}
    )
    comm_exposed_s: float | None = field(
        default=None, metadata={"help": "DDP: median step - median step without communication (seconds)"}
    )
    comm_overlap: float | None = field(
        default=None, metadata={"help": "DDP: share of comm_time_s hidden behind backward, 1 - exposed/comm"}
    )
    scaling_efficiency: float | None = field(
        default=None, metadata={"help": "DDP: throughput at world_size / (world_size x throughput at 1)"}
    )
    scaling_efficiency_ci: list[float] | None = field(
        default=None, metadata={"help": "DDP: 95% interval of scaling_efficiency (paired rounds)"}
    )
    ddp: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "DDP details: buckets, expected bytes, samples (docs)"}
    )
    noisy: bool | None = field(default=None, metadata={"help": "true when a reason in noise applies"})
    noise: list[str] = field(default_factory=list, metadata={"help": "why the record is noisy"})
    optimizer: str | None = field(default=None, metadata={"help": "AdamW(fused) or AdamW(foreach)"})
    attention_kernel: str | None = field(
        default=None, metadata={"help": "the aten attention operator that ran (the SDPA backend)"}
    )
    exec_setup_s: float | None = field(
        default=None, metadata={"help": "compile or capture: seconds spent before timing (its first steps)"}
    )
    exec_recompiles: int | None = field(
        default=None, metadata={"help": "compile: recompilations beyond one graph per drawn value"}
    )
    exec_info: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "compile/cudagraph: graphs, graph breaks, mode, pools"}
    )
    timing: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "rounds, calls per sample, warm-up steps"}
    )
    load: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "machine load around the measurement (see measure.load)"}
    )
    variant_info: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @classmethod
    def for_scenario(cls, scenario: Scenario, status: str, **values: Any) -> Record:
        """A record of ``scenario`` with ``key`` and ``group`` filled in."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return cls(
            **dataclasses.asdict(scenario), status=status, key=scenario.key, group=scenario.group, **values
        )

    @property
    def scenario(self) -> Scenario:
        return Scenario(**{name: getattr(self, name) for name in SCENARIO_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Record:
        """Parse a stored record; raises ValueError naming what is wrong (missing or mistyped field)."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("schema") not in READABLE_SCHEMAS:
            raise ValueError(
                f"unsupported record schema {data.get('schema')!r} (readable: {READABLE_SCHEMAS})"
            )
        required = [name for name in SCENARIO_FIELDS if name in KEY_FIELDS_V1]
        missing = [name for name in (*required, "status", "key") if name not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        if data["status"] not in STATUSES:
            raise ValueError(f"unknown status {data['status']!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        record = cls(**{name: value for name, value in data.items() if name in known})
        record.scenario  # noqa: B018 -- validates the scenario fields (ScenarioError is a ValueError)
        if record.schema == 1:  # no run ids yet: the records of one run of a group share their creation time
            record.run_id = "v1-" + _sha1({"group": record.group, "created_at": record.created_at})[:12]
        return record
