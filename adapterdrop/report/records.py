"""Load records from one or more results files and label each with the series (environment) it belongs to.

The report never measures: everything it shows comes from the records loaded here. Records are handled
as the plain dicts of the JSON Lines schema (docs/architecture.md); the loader adds one field, ``series``,
naming the environment a record came from so that several machines, devices, dtypes or commits merged
into one report stay apart in tables and plots (an empty label when all records share one environment).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from adapterdrop.errors import VariantError
from adapterdrop.models.presets import model_config
from adapterdrop.results import load_records
from adapterdrop.variants import REGISTRY, VariantSpec, parse_variant

Record = dict[str, Any]

#: environment facts that tell one series of measurements from another, and how a label names each
#: (not precision: it follows the phase, native for inference and autocast for fp16/bf16 training).
_SERIES_FIELDS: tuple[tuple[str, str], ...] = (
    ("hostname", "{}"),
    ("device", "{}"),
    ("device_name", "{}"),
    ("dtype", "{}"),
    ("threads", "{} threads"),
    ("torch", "torch {}"),
    ("transformers", "transformers {}"),
    ("git_commit", "commit {:.7}"),
)


def env_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record's environment: its ``env`` block plus the scenario's device, dtype, precision, threads."""
    env = dict(record.get("env") or {})
    for field in ("device", "dtype", "precision", "threads"):
        env[field] = record.get(field)
    return env


def _series_identity(record: Mapping[str, Any]) -> tuple[str, ...]:
    env = env_of(record)
    return tuple(str(env.get(field)) for field, _ in _SERIES_FIELDS)


def _series_labels(identities: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """A short label per environment, naming only the facts in which the environments differ."""
    identities = sorted(set(identities))
    varying = [i for i in range(len(_SERIES_FIELDS)) if len({ident[i] for ident in identities}) > 1]
    return {ident: " · ".join(_SERIES_FIELDS[i][1].format(ident[i]) for i in varying) for ident in identities}


def load_all(paths: Iterable[Path]) -> list[Record]:
    """Every record of the given results files, one per (environment, scenario key), labelled by series.

    A results file is append-only, so a scenario measured again after an error appears twice: the later
    record (by ``created_at``; on a tie the one read last) wins. The same file given twice counts once.
    Raises :class:`adapterdrop.results.ResultsFileError` naming the file and line of a corrupt record.
    """
    latest: dict[tuple[tuple[str, ...], str], Record] = {}
    for path in paths:
        for stored in load_records(path):
            record = stored.to_dict()
            ident = (_series_identity(record), record["key"])
            kept = latest.get(ident)
            if kept is None or record["created_at"] >= kept["created_at"]:
                latest[ident] = record
    labels = _series_labels(ident for ident, _ in latest)
    return [{**record, "series": labels[ident]} for (ident, _), record in latest.items()]


@functools.cache
def variant_spec(name: str) -> VariantSpec | None:
    """The parsed variant of a record (defaults filled in), or None for a name this version does not know."""
    try:
        return parse_variant(name)
    except VariantError:
        return None


def family(name: str) -> str:
    """The variant family of a canonical name: ``adapterdrop`` for ``adapterdrop:n=5``."""
    return name.partition(":")[0]


def option(name: str, key: str) -> Any:
    """The value of one option of a variant (its default when the name leaves it out), None if unknown."""
    spec = variant_spec(name)
    return dict(spec.values).get(key) if spec else None


@functools.cache
def num_layers(model: str) -> int:
    """Number of transformer layers of a model preset (or config.json path), from its config."""
    return int(model_config(model).num_hidden_layers)


def sort_key(value: Any) -> tuple[int, float, str]:
    """Orders numbers numerically and before anything else, which is ordered as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def variant_sort_key(name: str) -> tuple[Any, ...]:
    """Orders variant names by family, then by the options the name spells out (numbers numerically), so
    that a name with fewer options comes first: ``fusion:adapters=8`` before ``fusion:adapters=8,keep=2``."""
    fam, _, rest = name.partition(":")
    families = list(REGISTRY)  # the order `adapterdrop variants` lists them in
    rank = families.index(fam) if fam in families else len(families)
    options = []
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options.append((key, sort_key(int(value)) if value.isdigit() else sort_key(value)))
    return (rank, fam, tuple(options))


def group_by(
    records: Iterable[Record], *fields: str | Callable[[Record], Any]
) -> dict[tuple[Any, ...], list[Record]]:
    """Records grouped by the values of ``fields`` (field names or functions of a record), keys sorted."""
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for record in records:
        key = tuple(f(record) if callable(f) else record.get(f) for f in fields)
        groups.setdefault(key, []).append(record)
    return dict(sorted(groups.items(), key=lambda item: tuple(sort_key(v) for v in item[0])))


def describe_env(record: Mapping[str, Any]) -> str:
    """One line naming the machine and versions a record was measured with (for captions)."""
    env = env_of(record)
    device = str(env.get("device"))
    hardware = env.get("device_name") or env.get("cpu") or device
    commit = str(env.get("git_commit"))[:7] + (" (uncommitted changes)" if env.get("git_dirty") else "")
    return " · ".join(
        [
            f"{hardware} ({device}, {env.get('threads')} threads, {env.get('dtype')})",
            f"torch {env.get('torch')}",
            f"transformers {env.get('transformers')}",
            f"commit {commit}",
            f"host {env.get('hostname')}",
        ]
    )
