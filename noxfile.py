"""Developer sessions: ``nox -s tests``, ``lint``, ``bench``, ``sweep``, ``report``, ``run``, ``regress``,
``regress-calibrate``, ``profile``.

Every session installs the package with the torch constraint in ``constraints/cpu.txt`` (the CPU build);
on a GPU machine point ``ADAPTERDROP_CONSTRAINTS`` at your own constraints file, or set it empty to keep
whatever torch pip resolves.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = os.environ.get("ADAPTERDROP_CONSTRAINTS", "constraints/cpu.txt")


def install(session: nox.Session, extras: str) -> None:
    """The package in editable mode with ``extras``, torch pinned by :data:`CONSTRAINTS` if set."""
    constraint = ["-c", CONSTRAINTS] if CONSTRAINTS else []
    session.install(*constraint, "-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and end-to-end tests on tiny models (a few minutes on 2 CPU cores)."""
    install(session, "test")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark suites in bench/ (bert-small on the CPU, bert-base on a GPU; ADAPTERDROP_BENCH_MODEL
    picks another). Each run is saved as JSON under .benchmarks/ (``--benchmark-autosave``); compare with
    the last saved run by ``nox -s bench -- --benchmark-compare``."""
    install(session, "test")
    session.run(
        "python", "-m", "pytest", "bench", "--benchmark-only", "--benchmark-autosave", "-q", *session.posargs
    )


@nox.session
def regress(session: nox.Session) -> None:
    """The performance gate: the ci preset measured now against profiles/baselines/ci.json (exit 1 on a
    regression); the table goes to results/regress/. Arguments replace the defaults
    (``nox -s regress -- --against main``)."""
    install(session, "test")
    args = session.posargs or ["--baseline", "profiles/baselines/ci.json"]
    session.run("adapterdrop", "regress", *args)


@nox.session(name="regress-calibrate")
def regress_calibrate(session: nox.Session) -> None:
    """The gate's false alarms and detection rates on planted slowdowns (long: run on an idle machine)."""
    install(session, "test")
    session.run("python", "-m", "adapterdrop.regress.calibrate", *session.posargs)


@nox.session
def sweep(session: nox.Session) -> None:
    """A sweep preset into results/ (``nox -s sweep -- --preset paper --device cuda``)."""
    install(session, "test")
    args = session.posargs or ["--preset", "quick"]
    session.run("adapterdrop", "sweep", *args)


@nox.session
def report(session: nox.Session) -> None:
    """A report from stored results (``nox -s report -- results/quick.jsonl --out results/quick``)."""
    install(session, "test")
    args = session.posargs or ["results/quick.jsonl", "--out", "results/quick"]
    session.run("adapterdrop", "report", *args)


@nox.session
def run(session: nox.Session) -> None:
    """The main job: the quick sweep, then its report."""
    install(session, "test")
    session.run("adapterdrop", "run", *session.posargs)


@nox.session
def profile(session: nox.Session) -> None:
    """A profile (``nox -s profile -- adapterdrop:n=5 --vs adapter --phase train --model bert-base``)."""
    install(session, "test")
    args = session.posargs or ["adapterdrop:n=5", "--vs", "adapter", "--phase", "train"]
    session.run("adapterdrop", "profile", *args)
