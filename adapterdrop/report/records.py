"""Load the records of one or more results files: one run per group and environment, each labelled by series.

The report never measures: everything it shows comes from the records loaded here, typed as
:class:`ReportRecord` (a :class:`adapterdrop.scenario.Record` plus what the report knows about it). Records
are told apart by their environment (host, device, dtype, execution mode, threads, library versions,
commit); each environment is a *series*, labelled by the facts in which the environments differ (an empty
label when all records share one).

Per series and comparison group, one whole run is kept (:func:`adapterdrop.results.latest_runs`: the
latest run holding every scenario of the group), so that no ratio is ever built from records of two
runs. What the kept runs replaced is returned with them (:class:`Supersession`), for the report to say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from adapterdrop.report.names import sort_key
from adapterdrop.results import latest_runs, load_records
from adapterdrop.scenario import Record

#: environment facts that tell one series of measurements from another, and how a label names each
#: (not precision: it follows the phase, native for inference and autocast for fp16/bf16 training).
_SERIES_FIELDS: tuple[tuple[str, str], ...] = (
    ("hostname", "{}"),
    ("device", "{}"),
    ("device_name", "{}"),
    ("dtype", "{}"),
    ("exec", "{}"),
    ("threads", "{} threads"),
    ("torch", "torch {}"),
    ("transformers", "transformers {}"),
    ("git_commit", "commit {:.7}"),
)
_RECORD_FIELDS = tuple(f.name for f in fields(Record))
T = TypeVar("T")


@dataclass(eq=False)
class ReportRecord(Record):
    """A stored record as the report sees it.

    ``series`` labels its environment, ``source`` is the file it was read from. Set when its run is paired
    (:func:`adapterdrop.report.ratios.pair_runs`): ``reference``, the baseline record of the same run (the
    record itself for the baseline), and ``caveats``, why its time or speedup is not stated as a result
    (noise, a loaded machine); empty for a result.
    """

    series: str = ""
    source: str = ""
    model_layers: int | None = None
    reference: ReportRecord | None = field(default=None, repr=False)
    caveats: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, record: Record, source: str) -> ReportRecord:
        return cls(**{name: getattr(record, name) for name in _RECORD_FIELDS}, source=source)

    @property
    def measured(self) -> bool:
        """True for a record with a time (status ok)."""
        return self.status == "ok" and self.time_median_s is not None

    @property
    def loaded(self) -> bool:
        """True when other processes (or guests) loaded the machine while its run was measured."""
        return bool(self.load.get("loaded"))

    @property
    def is_baseline(self) -> bool:
        return self.variant == self.baseline


@dataclass(frozen=True)
class Supersession:
    """The records of one run that a later run of the same group, in the same series, replaced."""

    superseded: list[ReportRecord]
    kept: list[ReportRecord]


@dataclass(frozen=True)
class Loaded:
    """What :func:`load_runs` read: the kept records, and what it did not keep and why."""

    records: list[ReportRecord]
    read: int = field(metadata={"help": "records in the files, every line counted"})
    duplicates: int = field(metadata={"help": "records read twice (same series, run and scenario)"})
    superseded: list[Supersession]

    @property
    def superseded_count(self) -> int:
        return sum(len(s.superseded) for s in self.superseded)


def env_of(record: Record) -> dict[str, Any]:
    """A record's environment: its ``env`` block plus the scenario's device, dtype, precision, threads and
    execution mode."""
    env = dict(record.env or {})
    for name in ("device", "dtype", "precision", "threads", "exec"):
        env[name] = getattr(record, name)
    return env


def _series_identity(record: Record) -> tuple[str, ...]:
    env = env_of(record)
    return tuple(str(env.get(name)) for name, _ in _SERIES_FIELDS)


def _series_labels(identities: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """A short label per environment, naming only the facts in which the environments differ."""
    identities = sorted(set(identities))
    varying = [i for i in range(len(_SERIES_FIELDS)) if len({ident[i] for ident in identities}) > 1]
    return {ident: " · ".join(_SERIES_FIELDS[i][1].format(ident[i]) for i in varying) for ident in identities}


def load_runs(paths: Sequence[Path]) -> Loaded:
    """The records of ``paths``: per series and group the latest complete run, labelled by series.

    A record read twice (the same file given twice) counts once. Raises
    :class:`adapterdrop.results.ResultsFileError` naming the file and line of a corrupt record.
    """
    unique: dict[tuple[tuple[str, ...], str, str], ReportRecord] = {}
    read = 0
    for path in paths:
        for stored in load_records(path):
            read += 1
            record = ReportRecord.of(stored, str(path))
            unique[(_series_identity(record), record.run_id, record.key)] = record
    identity = {id(record): ident for (ident, _, _), record in unique.items()}
    kept, superseded = latest_runs(list(unique.values()), lambda r: (identity[id(r)], r.group))
    labels = _series_labels(identity.values())
    layers = model_layers(unique.values())
    for record in unique.values():
        record.series = labels[identity[id(record)]]
        record.model_layers = layers.get(record.model)
    return Loaded(
        records=kept,
        read=read,
        duplicates=read - len(unique),
        superseded=_supersessions(kept, superseded),
    )


def _supersessions(kept: list[ReportRecord], superseded: list[ReportRecord]) -> list[Supersession]:
    """One entry per superseded run, with the kept records of its group and series."""
    kept_by_group = group_by(kept, "series", "group")
    runs = group_by(
        superseded, "comparison", "series", "phase", "model", "seq_len", "batch_size", "group", "run_id"
    )
    return [
        Supersession(members, kept_by_group.get((members[0].series, members[0].group), []))
        for members in runs.values()
    ]


def group_by(items: Iterable[T], *by: str | Callable[[T], Any]) -> dict[tuple[Any, ...], list[T]]:
    """Items (records, ratios) grouped by the values of ``by`` (attribute names or functions of an item),
    keys sorted."""
    groups: dict[tuple[Any, ...], list[T]] = {}
    for item in items:
        key = tuple(f(item) if callable(f) else getattr(item, f) for f in by)
        groups.setdefault(key, []).append(item)
    return dict(sorted(groups.items(), key=lambda item: tuple(sort_key(v) for v in item[0])))


def model_layers(records: Iterable[Record]) -> dict[str, int]:
    """model -> number of transformer layers, from what the records say their variants built: a parallel
    record's ``layers``, or the highest adapter layer of an adapter record (adapters reach the top layer).
    A model no record describes is absent."""
    layers: dict[str, int] = {}
    for record in records:
        info: Mapping[str, Any] = record.variant_info or {}
        if isinstance(info.get("layers"), int):
            layers[record.model] = info["layers"]
        elif info.get("adapter_layers"):
            layers.setdefault(record.model, max(info["adapter_layers"]) + 1)
    return layers


def describe_env(record: Record) -> str:
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
