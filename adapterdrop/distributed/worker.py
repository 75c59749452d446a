"""What every rank of ``adapterdrop ddp`` runs: ``python -m adapterdrop.distributed.worker JOB.json``,
started by torchrun (:mod:`adapterdrop.distributed.launch`).

1. Join the process group and make the sub-group of every measured world size (:mod:`.team`).
2. Rank 0 alone counts what does not depend on the world size, on a variant built for it and dropped
   after: parameters, FLOPs of a step (:func:`~adapterdrop.measure.flops.step_flops`) and its memory
   without DDP (:func:`~adapterdrop.measure.memory.step_memory`).
3. Every rank builds each variant with :func:`~adapterdrop.measure.prepare.prepare_step` on its own
   batch (seed 0 + rank), once for every world size it belongs to and every unused-parameter mode, and
   wraps it in DDP (:class:`~adapterdrop.distributed.wrap.DataParallelStep`).
4. Per wrapper: warm-up, the gradient check (:mod:`.checks`) and the byte count (:mod:`.hooks`).
5. The step, the step without communication and the communication alone of every wrapper are timed in
   rotated rounds, all ranks in step (:mod:`.timing`), under a load tracker on rank 0.
6. Rank 0 turns it into records (:mod:`.records`) and appends them to the results file.

An exception on any rank ends that rank with exit status 1 after writing the time and one line into
``$ADAPTERDROP_DDP_ERRORS/rank-R.txt`` (the launcher prints the earliest); torchrun then stops the other
ranks.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from adapterdrop.distributed.checks import GradientCheck, check_gradients
from adapterdrop.distributed.job import DDPJob, DDPJobError
from adapterdrop.distributed.launch import ERRORS_VARIABLE
from adapterdrop.distributed.records import Measured, build_records
from adapterdrop.distributed.team import Team, hostname, own_cpu_seconds, without_siblings
from adapterdrop.distributed.timing import Timed, agree_number, timed_rounds
from adapterdrop.distributed.wrap import DataParallelStep, StepCount
from adapterdrop.inputs import make_batch
from adapterdrop.measure.env import collect_env
from adapterdrop.measure.flops import step_flops
from adapterdrop.measure.load import LOADED_CORES, LoadTracker
from adapterdrop.measure.memory import step_memory
from adapterdrop.measure.prepare import SEED, GroupContext, PreparedStep, group_context, prepare_step
from adapterdrop.measure.runner import new_run_id, now_iso, one_line
from adapterdrop.measure.timing import fixed_threads
from adapterdrop.measure.utilization import device_peak
from adapterdrop.results import append_records
from adapterdrop.scenario import Scenario

KINDS = ("step", "silent", "comm")


def say(team: Team, message: str) -> None:
    """A progress line on rank 0's stderr."""
    if team.rank == 0:
        print(f"ddp: {message}", file=sys.stderr, flush=True)


def variant_facts(prepared: PreparedStep) -> dict[str, Any]:
    """Record fields that do not depend on the world size: parameters, FLOPs, optimizer, memory of the
    step without DDP, and what the variant built."""
    info = prepared.model.describe()
    flops = step_flops(prepared)
    if "flops_by_draw" in flops:
        info["flops_by_draw"] = flops.pop("flops_by_draw")
    memory = step_memory(prepared)
    if "memory_by_draw" in memory:
        info["memory_by_draw"] = memory.pop("memory_by_draw")
    return {
        **prepared.counts(),
        **flops,
        **memory,
        "optimizer": prepared.optimizer_name,
        "variant_info": info,
    }


def rank_context(scenario: Scenario, rank: int) -> GroupContext:
    """The group context of ``scenario`` with this rank's own batch (seed 0 + rank), as data parallelism
    gives every rank different data."""
    context = group_context(scenario)
    config = context.config
    batch = make_batch(
        config.vocab_size, scenario.batch_size, scenario.seq_len, str(context.device), SEED + rank
    )
    return dataclasses.replace(context, batch=batch)


def _name(scenario: Scenario, kind: str) -> str:
    return f"{scenario.world_size}|{scenario.ddp_unused}|{scenario.variant}|{kind}"


def _oversubscribed(team: Team, job: DDPJob) -> list[str]:
    """A noise reason when the ranks of one host need more cores than it lets them use (CPU runs)."""
    if job.device != "cpu":
        return []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    wanted = team.local_world_size * job.threads
    if wanted <= cores:
        return []
    return [
        f"{team.local_world_size} processes x {job.threads} threads share {cores} cores: not a scaling result"
    ]


def run(job: DDPJob) -> None:
    """Measure ``job`` on this rank (a collective of every rank of the launch)."""
    team = Team.join(job.device, job.resolved_backend, job.world_sizes)
    too_large = [w for w in job.world_sizes if w > team.world_size]
    if too_large:
        raise DDPJobError(f"world size(s) {too_large} exceed the {team.world_size} processes launched")
    device_label = "cpu" if team.device.type == "cpu" else f"cuda:{team.device.index}"
    cells = [
        scenario
        for size in job.world_sizes
        for mode in job.unused_modes
        for scenario in job.scenarios(size, mode, device_label)
    ]
    first = cells[: len(job.variants)]  # one scenario per variant: what is built once per rank
    with fixed_threads(job.threads):
        facts: dict[str, dict[str, Any]] = {}
        if team.rank == 0:
            say(team, f"counting FLOPs and memory of {len(first)} variant(s) on rank 0")
            context = group_context(first[0])
            facts = {s.variant: variant_facts(prepare_step(s, context)) for s in first}
            del context
        team.barrier()
        context = rank_context(first[0], team.rank)
        steps: dict[str, DataParallelStep] = {}
        checks: dict[str, GradientCheck] = {}
        counts: dict[str, dict[Any, StepCount]] = {}
        say(team, f"wrapping {len(cells)} scenario(s) in DDP; warm-up, gradient check, byte count")
        for scenario in cells:
            if not team.member(scenario.world_size):
                continue
            dp = DataParallelStep(
                prepare_step(scenario, context),  # a variant of its own per wrapper: see wrap.py
                team.groups[scenario.world_size],
                unused=scenario.ddp_unused,
                bucket_cap_mb=scenario.bucket_cap_mb,
            )
            dp.warm_up(job.timing.warmup_steps)
            checks[scenario.key] = check_gradients(dp)
            counts[scenario.key] = dp.count()
            steps[scenario.key] = dp
        items = []
        for scenario in cells:
            dp = steps.get(scenario.key)
            functions = (dp.step, dp.silent_step, dp.comm_only) if dp else (None, None, None)
            cycle = dp.steps_per_call if dp else 1  # rank 0, which keeps the samples, is in every world size
            items += [
                Timed(_name(scenario, k), scenario.world_size, f, cycle)
                for k, f in zip(KINDS, functions, strict=True)
            ]
        say(team, f"calibrating {len(items)} callables")
        numbers = {
            item.name: agree_number(team, item, job.threads, job.timing.min_sample_time_s) for item in items
        }
        say(team, f"timing {job.timing.rounds} rounds")
        team.barrier()
        cpu_before = own_cpu_seconds()
        with LoadTracker() as tracker:
            rounds = job.timing.rounds
            samples = timed_rounds(
                team, items, numbers, job.threads, rounds, lambda r: say(team, f"round {r} of {rounds} done")
            )
        cpu_used = own_cpu_seconds() - cpu_before
    ranks = team.gather({"host": hostname(), "cpu_s": cpu_used})
    if team.rank == 0:
        siblings = sum(r["cpu_s"] for r in ranks[1:] if r["host"] == ranks[0]["host"])
        load = without_siblings(tracker.fields(), siblings, LOADED_CORES)
        measured = [
            Measured(
                scenario=s,
                facts=facts[s.variant],
                counts=counts[s.key],
                check=checks[s.key],
                wrappers=len(steps[s.key].reduced),
                samples={k: samples[_name(s, k)] for k in KINDS},
                numbers={k: numbers[_name(s, k)] for k in KINDS},
            )
            for s in cells
        ]
        records = build_records(
            measured,
            timing=job.timing,
            run_id=new_run_id(),
            created_at=now_iso(),
            env=_env(team, job, device_label),
            load=load,
            launch=_launch(team, ranks),
            extra_noise=_oversubscribed(team, job),
            peak=device_peak(str(team.device), job.dtype, job.threads),  # after timing: a CPU may measure
        )
        append_records(job.results, records)
        say(team, f"{len(records)} record(s) written to {job.results}")
    team.barrier()
    team.leave()


def _launch(team: Team, ranks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    hosts = sorted({r["host"] for r in ranks})
    return {
        "launch_world_size": team.world_size,
        "nodes": len(hosts),
        "hosts": hosts,
        "local_world_size": team.local_world_size,
        "launcher": "torch.distributed.run (torchrun)",
    }


def _env(team: Team, job: DDPJob, device_label: str) -> dict[str, Any]:
    env = collect_env(device_label, job.threads)
    env["distributed"] = {
        "backend": job.resolved_backend,
        "nccl": _nccl_version() if team.device.type == "cuda" else None,
        "launch_world_size": team.world_size,
        "local_world_size": team.local_world_size,
    }
    return env


def _nccl_version() -> str:
    version = torch.cuda.nccl.version()  # a tuple in recent torch, an int (e.g. 21803) in older ones
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a rank: ``python -m adapterdrop.distributed.worker JOB.json``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(
            "usage: python -m adapterdrop.distributed.worker JOB.json (started by torchrun)", file=sys.stderr
        )
        return 2
    try:
        run(DDPJob.read(args[0]))
    except Exception as exc:  # one line for the launcher; torchrun stops the other ranks
        rank = os.environ.get("RANK", "0")
        message = one_line(exc)
        folder = os.environ.get(ERRORS_VARIABLE)
        if folder:
            Path(folder, f"rank-{rank}.txt").write_text(
                f"{time.time()}\trank {rank}: {message}\n", encoding="utf-8"
            )
        print(f"ddp: rank {rank}: {message}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
