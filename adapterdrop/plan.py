"""The planner: a preset file or command-line flags -> comparison groups, the one place groups are made.

Sweeps, ``measure``, the bench suites, the profiler and the regression gate all plan through here:

- :func:`load_preset` reads ``bench/presets/NAME.toml`` (or a path) into a :class:`SweepPreset`;
  :func:`preset_from_flags` builds the same from ``--variant/--baseline/--phase/...`` flags;
- :func:`expand_groups` turns a preset into :class:`Group` s, in measuring order. A group is one cell of a
  comparison (model, phase, batch size, sequence length, device, dtype, precision, threads, execution
  mode, and the values of the placeholders in the baseline's name): its baseline first, then its variants;
  they are measured together, interleaved, in one process (:mod:`adapterdrop.measure.runner`). The modes
  of one cell (``execs``) are groups of their own, planned one after another;
- :func:`check_variants_fit` builds every variant on a miniature of its model before anything is measured;
  :func:`check_sequences_fit` (run by :func:`validate_preset`) checks every sequence length against the
  positions of every model;
- :func:`shard` picks the I-th of K disjoint parts of the groups (whole groups), so that a cluster scheduler
  (a SLURM job array, a Kubernetes Indexed Job) runs one grid on many machines; a preset's ``shard``
  makes :func:`expand_groups` return only that part.
"""

from __future__ import annotations

import dataclasses
import itertools
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adapterdrop.backends import build_variant, parse_variant
from adapterdrop.errors import AdapterDropError, VariantError
from adapterdrop.families import FAMILIES, family_of, max_positions, model_config
from adapterdrop.families.decoder_variants import build_decoder_variant
from adapterdrop.families.fit import require_fit
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.scenario import (
    DTYPES,
    PHASES,
    PRECISIONS,
    Scenario,
    ScenarioError,
    canonical_exec,
    default_precision,
)
from adapterdrop.workloads import check_positions, workload_of

#: where ``load_preset("NAME")`` looks for ``NAME.toml``: the working directory's bench/presets, then the
#: checkout the package was imported from
PRESET_DIRS = (Path("bench/presets"), Path(__file__).resolve().parent.parent / "bench" / "presets")


class PresetError(AdapterDropError):
    """A sweep preset that does not exist or does not parse (message is one line)."""


@dataclass(frozen=True)
class Comparison:
    """A ``[[comparison]]`` table: a baseline and variants, measured together in every cell of a grid."""

    name: str = field(metadata={"help": "label stored in every record of the comparison"})
    baseline: str = field(
        metadata={"help": "variant every other one is compared with; may hold {placeholders}"}
    )
    variants: tuple[str, ...] = field(
        metadata={"help": "variant templates; {placeholders} expand in the group"}
    )
    phases: tuple[str, ...] = field(default=("train", "infer"), metadata={"help": "train and/or infer"})
    batch_sizes: tuple[int, ...] = field(default=(8,), metadata={"help": "sequences per step"})
    seq_lens: tuple[int, ...] = field(default=(128,), metadata={"help": "tokens per sequence"})
    expand: Mapping[str, tuple[Any, ...]] = field(
        default_factory=dict, metadata={"help": "placeholder -> values"}
    )


@dataclass(frozen=True)
class SweepPreset:
    """A sweep grid: comparisons x models x devices x dtypes, with one timing setup."""

    name: str = field(metadata={"help": "preset name (the file's stem)"})
    comparisons: tuple[Comparison, ...]
    description: str = ""
    models: tuple[str, ...] = field(default=("bert-small",), metadata={"help": "model preset names"})
    devices: tuple[str, ...] = field(default=("cpu",), metadata={"help": "cpu, cuda, cuda:N or all"})
    dtypes: tuple[str, ...] = field(default=("fp32",), metadata={"help": "fp32, fp16, bf16"})
    execs: tuple[str, ...] = field(
        default=("eager",), metadata={"help": "eager, compile[:mode=M], cudagraph: one group per mode"}
    )
    precision: str | None = field(
        default=None, metadata={"help": "native or autocast; None: native for infer, autocast for train"}
    )
    threads: int | None = field(default=None, metadata={"help": "torch threads; None: torch's default"})
    timing: TimingConfig = field(default_factory=TimingConfig)
    shard: tuple[int, int] | None = field(
        default=None, metadata={"help": "(I, K): plan only the I-th (0-based) of K parts of the groups"}
    )


@dataclass(frozen=True)
class Group:
    """The scenarios measured together: the baseline first, then the other variants of the cell."""

    scenarios: tuple[Scenario, ...]

    @property
    def baseline(self) -> Scenario:
        return self.scenarios[0]


# ---------------------------------------------------------------------------------------------- presets


def available_presets() -> list[str]:
    """Names of the preset files found in :data:`PRESET_DIRS`."""
    return sorted({path.stem for folder in PRESET_DIRS if folder.is_dir() for path in folder.glob("*.toml")})


def load_preset(name_or_path: str | Path) -> SweepPreset:
    """Read a preset by name (``quick`` -> ``bench/presets/quick.toml``) or by the path of a TOML file."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.is_file()):
        path = next(
            (folder / f"{text}.toml" for folder in PRESET_DIRS if (folder / f"{text}.toml").is_file()), path
        )
        if not path.is_file():
            raise PresetError(f"unknown sweep preset '{text}'; available: {', '.join(available_presets())}")
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise PresetError(f"preset {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"preset {path}: not valid TOML ({exc})") from None
    try:
        return preset_from_dict(data, name=path.stem)
    except AdapterDropError as exc:
        raise PresetError(f"preset {path}: {exc}") from None


_PRESET_KEYS = {
    "description",
    "models",
    "devices",
    "dtypes",
    "execs",
    "precision",
    "threads",
    "timing",
    "comparison",
}
_COMPARISON_KEYS = {"name", "baseline", "variants", "phases", "batch_sizes", "seq_lens", "expand"}


def preset_from_dict(data: Mapping[str, Any], name: str) -> SweepPreset:
    """A validated :class:`SweepPreset` from the parsed TOML of a preset file."""
    _no_unknown(data, _PRESET_KEYS, "preset")
    comparisons = data.get("comparison")
    if not isinstance(comparisons, list) or not comparisons:
        raise PresetError("needs at least one [[comparison]] table")
    timing = data.get("timing", {})
    if not isinstance(timing, dict):
        raise PresetError("[timing] must be a table")
    _no_unknown(timing, {f.name for f in dataclasses.fields(TimingConfig)}, "[timing]")
    preset = SweepPreset(
        name=name,
        description=str(data.get("description", "")),
        comparisons=tuple(_comparison(item, index) for index, item in enumerate(comparisons)),
        models=_strings(data.get("models", ["bert-small"]), "models"),
        devices=_strings(data.get("devices", ["cpu"]), "devices"),
        dtypes=_choices(data.get("dtypes", ["fp32"]), "dtypes", DTYPES),
        execs=_strings(data.get("execs", ["eager"]), "execs"),
        precision=data.get("precision"),
        threads=data.get("threads"),
        timing=TimingConfig(**timing),
    )
    validate_preset(preset)
    return preset


def validate_preset(preset: SweepPreset) -> None:
    """Check everything that can be checked before measuring: names, values, variant names, models."""
    if preset.precision is not None and preset.precision not in PRECISIONS:
        raise PresetError(f"precision must be one of {', '.join(PRECISIONS)}, not {preset.precision!r}")
    if preset.threads is not None and not _positive_int(preset.threads):
        raise PresetError(f"threads must be a positive integer, not {preset.threads!r}")
    for model in preset.models:
        model_config(model)  # UnknownPresetError names the valid ones
        check_workloads_fit(model, preset.comparisons)
        check_sequences_fit(model, (n for comparison in preset.comparisons for n in comparison.seq_lens))
    resolve_devices(preset.devices, check=False)
    execs = [canonical_exec(name) for name in preset.execs]  # ScenarioError names the valid forms
    if "cudagraph" in execs and "cpu" in resolve_devices(preset.devices, check=False):
        raise PresetError(
            "exec cudagraph needs a CUDA device, and the devices include cpu (use --device cuda, "
            "or exec eager or compile on the CPU)"
        )
    for comparison in preset.comparisons:
        for _ in _variant_sets(comparison):
            pass  # parses every expanded name: VariantError on a bad one


def _comparison(item: Any, index: int) -> Comparison:
    if not isinstance(item, dict):
        raise PresetError(f"[[comparison]] #{index + 1} must be a table")
    _no_unknown(item, _COMPARISON_KEYS, f"[[comparison]] #{index + 1}")
    where = f"comparison '{item.get('name', index + 1)}'"
    for key in ("name", "baseline", "variants"):
        if key not in item:
            raise PresetError(f"{where} needs '{key}'")
    expand = item.get("expand", {})
    if not isinstance(expand, dict) or not all(isinstance(v, list) and v for v in expand.values()):
        raise PresetError(f"{where}: expand must map each placeholder to a non-empty list")
    return Comparison(
        name=str(item["name"]),
        baseline=str(item["baseline"]),
        variants=_strings(item["variants"], f"{where}: variants", allow_empty=True),
        phases=_choices(item.get("phases", ["train", "infer"]), f"{where}: phases", PHASES),
        batch_sizes=_positive_ints(item.get("batch_sizes", [8]), f"{where}: batch_sizes"),
        seq_lens=_positive_ints(item.get("seq_lens", [128]), f"{where}: seq_lens"),
        expand={key: tuple(values) for key, values in expand.items()},
    )


def _no_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise PresetError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")


def _strings(value: Any, what: str, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) for v in value)
        or not (value or allow_empty)
    ):
        raise PresetError(f"{what} must be a non-empty list of strings")
    return tuple(value)


def _choices(value: Any, what: str, valid: Sequence[str]) -> tuple[str, ...]:
    values = _strings(value, what)
    for item in values:
        if item not in valid:
            raise PresetError(f"{what}: unknown value {item!r}; valid: {', '.join(valid)}")
    return values


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _positive_ints(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(_positive_int(v) for v in value):
        raise PresetError(f"{what} must be a list of positive integers, got {value!r}")
    return tuple(sorted(set(value)))


# ---------------------------------------------------------------------------------------------- expansion


def resolve_devices(devices: Iterable[str], *, check: bool = True) -> list[str]:
    """``cpu``, ``cuda`` (the current GPU), ``cuda:N`` or ``all`` (every visible GPU) -> device labels; an
    item may list several, comma-separated (``cuda:0,cuda:1``).

    With ``check``, a GPU that is not visible is an error; without it only the spelling is checked.
    """
    resolved: list[str] = []
    for device in (part.strip() for item in devices for part in item.split(",")):
        if device == "cpu":
            labels = ["cpu"]
        elif device == "all":
            if check and not torch.cuda.device_count():
                raise ScenarioError("--device all: no GPU is visible")
            labels = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        elif device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
            if not check:
                labels = [device]
            elif not torch.cuda.is_available():
                raise ScenarioError(f"device '{device}' requested but CUDA is not available")
            else:
                index = torch.cuda.current_device() if device == "cuda" else int(device[5:])
                if index >= torch.cuda.device_count():
                    raise ScenarioError(
                        f"device '{device}' does not exist; {torch.cuda.device_count()} GPU(s) visible"
                    )
                labels = [f"cuda:{index}"]
        else:
            raise ScenarioError(f"unknown device '{device}'; use cpu, cuda, cuda:N or all")
        resolved.extend(label for label in labels if label not in resolved)
    return resolved


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _fill(template: str, values: Mapping[str, Any], where: str) -> str:
    missing = _placeholders(template) - set(values)
    if missing:
        raise PresetError(f"{where}: placeholder(s) {', '.join(sorted(missing))} not in expand")
    return parse_variant(template.format(**values)).canonical


def _variant_sets(comparison: Comparison) -> list[tuple[str, list[str]]]:
    """(baseline, variants) per value of the baseline's placeholders; canonical names, baseline excluded."""
    where = f"comparison '{comparison.name}'"
    outer = [key for key in comparison.expand if key in _placeholders(comparison.baseline)]
    inner = [key for key in comparison.expand if key not in outer]
    sets = []
    for outer_values in itertools.product(*(comparison.expand[key] for key in outer)):
        fixed = dict(zip(outer, outer_values, strict=True))
        baseline = _fill(comparison.baseline, fixed, where)
        variants: list[str] = []
        for inner_values in itertools.product(*(comparison.expand[key] for key in inner)):
            values = {**fixed, **dict(zip(inner, inner_values, strict=True))}
            for template in comparison.variants:
                name = _fill(template, values, where)
                if name != baseline and name not in variants:
                    variants.append(name)
        sets.append((baseline, variants))
    return sets


def check_sequences_fit(model: str, seq_lens: Iterable[int]) -> None:
    """A :class:`PresetError` if a sequence length (tokens) exceeds the positions of ``model``
    (:func:`~adapterdrop.families.max_positions`), before anything is measured."""
    longest = max(seq_lens, default=0)
    limit = max_positions(model)
    if longest > limit:
        raise PresetError(f"sequence length {longest} does not fit {model}: it has {limit} positions")


def check_workloads_fit(model: str, comparisons: Iterable[Comparison]) -> None:
    """A :class:`~adapterdrop.errors.WorkloadError` if a comparison names a workload (phase) that
    ``model``'s family lacks, or, on a decoder, a sequence or a prompt and its new token (decode) that
    exceed its positions (an encoder's sequences are checked by :func:`check_sequences_fit`)."""
    decoder = family_of(model) is FAMILIES["decoder"]
    for comparison in comparisons:
        for phase in comparison.phases:
            workload_of(model, phase)
            if decoder:
                check_positions(model, phase, max(comparison.seq_lens))


def variant_phases(scenarios: Iterable[Scenario]) -> dict[str, list[str]]:
    """Each variant of ``scenarios`` (first seen first) with the phases it runs in, for
    :func:`check_variants_fit`."""
    phases: dict[str, list[str]] = {}
    for scenario in scenarios:
        phases.setdefault(scenario.variant, [])
        if scenario.phase not in phases[scenario.variant]:
            phases[scenario.variant].append(scenario.phase)
    return phases


def check_variants_fit(model: str, variants: Iterable[str] | Mapping[str, Iterable[str]]) -> None:
    """Build every variant on a miniature of ``model`` (its family's: same layers, width 8) so that an
    option that does not fit the model (``n`` beyond its layers, ``keep`` above ``adapters``, a variant a
    decoder lacks in a phase) is a :class:`VariantError` before anything is measured. ``variants`` may map
    each variant to the phases it runs in (:func:`variant_phases`); a plain list is checked for training.
    Takes milliseconds per variant."""
    phases = variants if isinstance(variants, Mapping) else {}
    family = family_of(model)
    config = family.miniature(model_config(model))
    base = family.build_base(config, 0)
    with torch.no_grad():
        for variant in dict.fromkeys(variants):
            try:
                if family is FAMILIES["decoder"]:
                    for phase in phases.get(variant, ("train",)):
                        build_decoder_variant(variant, config, base, 0, train=phase == "train")
                else:
                    build_variant(variant, config, base=base)
            except VariantError as exc:
                raise VariantError(f"{variant} on {model}: {exc}") from None


def check_groups_fit(groups: Iterable[Group]) -> None:
    """A :class:`~adapterdrop.families.fit.FitError` (one line with the figures) for the first scenario
    whose model cannot fit the machine for its workload (:mod:`adapterdrop.families.fit`), before anything
    is built. A sweep records such a scenario as ``skipped`` instead."""
    for group in groups:
        for scenario in group.scenarios:
            require_fit(scenario)


def expand_groups(preset: SweepPreset, devices: Sequence[str] | None = None) -> list[Group]:
    """Every group of the grid, in measuring order (batch sizes ascending within a series); only the
    preset's shard of them when it names one (:func:`shard`)."""
    device_labels = resolve_devices(devices if devices is not None else preset.devices)
    threads = preset.threads or torch.get_num_threads()
    groups = []
    for device, model, dtype, comparison in itertools.product(
        device_labels, preset.models, preset.dtypes, preset.comparisons
    ):
        for (baseline, variants), phase, seq_len, batch_size in itertools.product(
            _variant_sets(comparison), comparison.phases, comparison.seq_lens, comparison.batch_sizes
        ):
            common = dict(
                model=model,
                phase=phase,
                batch_size=batch_size,
                seq_len=seq_len,
                device=device,
                dtype=dtype,
                precision=default_precision(phase, dtype, preset.precision),
                threads=threads,
                comparison=comparison.name,
                baseline=baseline,
            )
            for exec_mode in dict.fromkeys(canonical_exec(name) for name in preset.execs):
                scenarios = (Scenario(variant=v, exec=exec_mode, **common) for v in [baseline, *variants])
                groups.append(Group(tuple(scenarios)))
    return shard(groups, *preset.shard) if preset.shard else groups


def parse_shard(text: str) -> tuple[int, int]:
    """``I/K`` (0 <= I < K, as a job array or an indexed job numbers its tasks) -> ``(I, K)``."""
    index, slash, count = text.partition("/")
    try:
        parsed = int(index), int(count)
    except ValueError:
        parsed = (-1, 0)
    if not slash or not 0 <= parsed[0] < parsed[1]:
        raise PresetError(f"shard must be I/K with 0 <= I < K (e.g. 0/4 ... 3/4), got '{text}'")
    return parsed


def shard(groups: Sequence[Group], index: int, count: int) -> list[Group]:
    """The ``index``-th (0-based) of ``count`` disjoint parts of ``groups``: every ``count``-th group from
    ``index`` on, in order (round robin, so each part gets groups of every size). A group is never split;
    the ``count`` parts together hold every group exactly once. Every machine of an array must plan the
    same grid (same preset, models and devices) for the parts to fit together."""
    if not 0 <= index < count:
        raise PresetError(f"shard index {index} is not in 0..{count - 1}")
    return list(groups[index::count])


# ---------------------------------------------------------------------------------------------- flags


def preset_from_flags(
    variants: Sequence[str],
    *,
    baseline: str | None = None,
    phases: Sequence[str] = ("train", "infer"),
    batch_sizes: Sequence[int] = (8,),
    seq_lens: Sequence[int] = (128,),
    comparison: str = "cli",
) -> SweepPreset:
    """A one-comparison preset named ``cli`` from command-line flags; the baseline defaults to the first
    variant."""
    if not variants:
        raise PresetError("give at least one variant")
    return SweepPreset(
        name="cli",
        comparisons=(
            Comparison(
                name=comparison,
                baseline=baseline or variants[0],
                variants=tuple(variants),
                phases=tuple(phases),
                batch_sizes=tuple(sorted(set(batch_sizes))),
                seq_lens=tuple(sorted(set(seq_lens))),
            ),
        ),
    )


def with_overrides(
    preset: SweepPreset,
    *,
    models: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    precision: str | None = None,
    threads: int | None = None,
    timing: TimingConfig | None = None,
    shard: tuple[int, int] | None = None,
    execs: Sequence[str] | None = None,
) -> SweepPreset:
    """``preset`` with the given settings replaced (None keeps the preset's), validated."""
    changed = dataclasses.replace(
        preset,
        models=tuple(models) if models else preset.models,
        devices=tuple(devices) if devices else preset.devices,
        dtypes=tuple(dtypes) if dtypes else preset.dtypes,
        execs=tuple(execs) if execs else preset.execs,
        precision=precision or preset.precision,
        threads=threads or preset.threads,
        timing=timing or preset.timing,
        shard=shard or preset.shard,
    )
    validate_preset(changed)
    return changed
