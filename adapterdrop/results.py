"""The append-only JSON Lines results store.

One record per line. Appends are flushed and fsync'ed, so a sweep killed at any moment keeps every
group it finished. A last line without its newline is a write torn by such a kill: loading ignores it
(with a :class:`TornLineWarning`) and the next append cuts it off. Any other line that is not a record is
an error naming the line. Filesystem errors become a :class:`ResultsFileError` whose message is one plain
sentence (the path, what failed and why, without an errno).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path

from adapterdrop.errors import AdapterDropError
from adapterdrop.scenario import FINAL_STATUSES, Record


class ResultsFileError(AdapterDropError):
    """A results file cannot be read or written, or one of its lines is not a record (message names
    path:line)."""


class TornLineWarning(UserWarning):
    """A results file ends in a line without its newline (a write cut off by a kill); it is ignored."""


def os_reason(exc: OSError) -> str:
    """Why a filesystem call failed, as plain words: ``read-only file system``, not ``[Errno 30] ...``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return reason[:1].lower() + reason[1:]


def load_records(path: Path | str, *, missing_ok: bool = False) -> list[Record]:
    """Read every record of ``path``; an absent file is ``[]`` when ``missing_ok``, else an error."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return []
        raise ResultsFileError(f"{path}: no such results file") from None
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read results file ({os_reason(exc)})") from None
    records = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            if number == len(lines):  # no newline after it: a write torn by a kill
                warnings.warn(
                    f"{path}:{number}: ignoring an incomplete last line (a write cut off by a kill;"
                    " the next append removes it)",
                    TornLineWarning,
                    stacklevel=2,
                )
                continue
            raise ResultsFileError(f"{path}:{number}: not valid JSON ({_first_line(exc)})") from None
        try:
            records.append(Record.from_dict(value))
        except (ValueError, TypeError) as exc:
            raise ResultsFileError(f"{path}:{number}: not a valid record: {_first_line(exc)}") from None
    return records


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def finished_keys(records: Iterable[Record]) -> set[str]:
    """Keys of records that a rerun does not measure again (status ok, oom or skipped)."""
    return {record.key for record in records if record.status in FINAL_STATUSES}


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents if absent (one that exists as a file fails when opened inside)."""
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)


def check_writable(path: Path | str) -> None:
    """Raise :class:`ResultsFileError` unless records can be appended to ``path``: call it before measuring,
    so that a result is never measured and then lost. Creates the file's folder; a file that did not exist
    is created to try and removed again."""
    path = Path(path)
    existed = path.exists()
    try:
        _make_folder(path.parent)
        with open(path, "ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot write results file ({os_reason(exc)})") from None


def append_records(path: Path | str, records: Iterable[Record]) -> None:
    """Append ``records`` to ``path`` (created with its folder if absent), then flush and fsync."""
    path = Path(path)
    text = "".join(json.dumps(record.to_dict(), allow_nan=False) + "\n" for record in records)
    if not text:
        return
    try:
        _make_folder(path.parent)
        with open(path, "ab") as handle:
            _end_last_line(handle, path)
            handle.write(text.encode())
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot write results file ({os_reason(exc)})") from None


def _end_last_line(handle, path: Path) -> None:
    """Before appending: close a last line that lacks its newline, or cut it off if it is torn."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(path, "rb") as reader:
        start = size
        while start > 0:  # find where the last line begins, reading backwards in blocks
            block_start = max(0, start - (1 << 16))
            reader.seek(block_start)
            cut = reader.read(start - block_start).rfind(b"\n")
            if cut >= 0:
                start = block_start + cut + 1
                break
            start = block_start
        reader.seek(start)
        tail = reader.read()
    if not tail:
        return
    try:
        json.loads(tail)
    except ValueError:
        handle.truncate(start)
    else:
        handle.write(b"\n")


def latest_runs(
    records: Sequence[Record], scope: Callable[[Record], Hashable] = lambda record: record.group
) -> tuple[list[Record], list[Record]]:
    """The records of one run per group, and the records that run supersedes; both in stored order.

    Per ``scope`` (by default the group; a reader of several environments adds the environment), the runs
    are ordered by their newest record (then by their place in ``records``), and the latest *complete*
    run is kept: one that holds every scenario key any run of the group holds. When no run is complete
    (files written before schema 2 stored re-measured records without their baseline), the latest run
    that holds the group's baseline is kept, else the latest run. Records of a group are never mixed
    across runs, so every ratio read back refers to a baseline of its own run.
    """
    runs: dict[Hashable, dict[str, list[int]]] = {}
    for index, record in enumerate(records):
        runs.setdefault(scope(record), {}).setdefault(record.run_id, []).append(index)
    kept: set[int] = set()
    for group_runs in runs.values():
        ordered = sorted(
            group_runs.values(),
            key=lambda members: (max(records[i].created_at for i in members), members[-1]),
        )
        every_key = {records[i].key for members in ordered for i in members}
        complete = [m for m in ordered if {records[i].key for i in m} >= every_key]
        with_baseline = [m for m in ordered if any(records[i].variant == records[i].baseline for i in m)]
        chosen = (complete or with_baseline or ordered)[-1]
        kept.update(chosen)
    return (
        [r for i, r in enumerate(records) if i in kept],
        [r for i, r in enumerate(records) if i not in kept],
    )
