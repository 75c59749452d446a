"""Start a data-parallel job through torchrun (``torch.distributed.run``, the elastic launcher).

The launcher writes the job to a temporary file and runs, in this process, exactly what the command line

    torchrun --standalone --nproc-per-node N --module adapterdrop.distributed.worker JOB.json

runs (``--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT --rdzv-id ID`` instead of
``--standalone`` for several machines: run the same ``adapterdrop ddp`` command on each). torchrun starts
the ranks, sets their rank and rendezvous variables, watches them and stops them all when one fails;
nothing here spawns a process itself. A failing rank leaves one line in the errors folder, which becomes
the launcher's one-line error.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from adapterdrop.distributed.job import DDPJob
from adapterdrop.errors import AdapterDropError

WORKER = "adapterdrop.distributed.worker"
#: names the folder where a failing rank leaves its one-line error (set for the ranks by :func:`launch`)
ERRORS_VARIABLE = "ADAPTERDROP_DDP_ERRORS"


class DDPLaunchError(AdapterDropError):
    """A data-parallel launch that failed (message: the first failing rank's error, one line)."""


def torchrun_arguments(
    job_file: Path | str,
    *,
    nproc: int,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    rdzv_id: str = "adapterdrop-ddp",
) -> list[str]:
    """torchrun's command-line arguments for the job in ``job_file``: one machine (``--standalone``, a free
    local port) unless ``rdzv_endpoint`` names the rendezvous of several."""
    arguments = [f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if rdzv_endpoint:
        arguments += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={rdzv_id}"]
    else:
        arguments.append("--standalone")
    return [*arguments, "--module", WORKER, str(job_file)]


def first_error(folder: Path) -> str | None:
    """The error line of the rank that failed first (the others usually fail because it left), from the
    ``rank-R.txt`` files the ranks wrote: ``SECONDS<TAB>rank R: message``."""
    found = []
    for path in folder.glob("rank-*.txt"):
        seconds, _, message = path.read_text(encoding="utf-8").strip().partition("\t")
        found.append((float(seconds), message))
    return min(found)[1] if found else None


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (torchrun passes this process's environment to the ranks)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def launch(
    job: DDPJob,
    *,
    nproc: int,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    rdzv_id: str = "adapterdrop-ddp",
    environment: Mapping[str, str] | None = None,
) -> None:
    """Run ``job`` on ``nproc`` processes per machine through torchrun; return when every rank is done.

    ``environment`` adds variables for the ranks (e.g. ``CUDA_VISIBLE_DEVICES``). Raises
    :class:`DDPLaunchError` naming the first failing rank's error.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    with tempfile.TemporaryDirectory(prefix="adapterdrop-ddp-") as folder:
        job_file = Path(folder) / "job.json"
        job.write(job_file)
        errors = Path(folder) / "errors"
        errors.mkdir()
        arguments = torchrun_arguments(
            job_file, nproc=nproc, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint, rdzv_id=rdzv_id
        )
        print(f"ddp: torchrun {' '.join(arguments)}", file=sys.stderr, flush=True)
        variables = {"OMP_NUM_THREADS": str(job.threads), ERRORS_VARIABLE: str(errors), **(environment or {})}
        try:
            with _environment(variables):
                run(parse_args(arguments))
        except ChildFailedError as exc:
            detail = first_error(errors) or str(exc).strip().splitlines()[0]
            raise DDPLaunchError(f"data-parallel run failed: {detail}") from None
