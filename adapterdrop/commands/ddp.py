"""``adapterdrop ddp``: data-parallel training of each variant with DistributedDataParallel, launched
through torchrun, for world sizes 1..N in one launch; rank 0 appends the records to a results file.

The scenarios are planned by the one planner (:mod:`adapterdrop.plan`: names normalised, variants fitted to
the model, sequence length checked) before anything is launched; the launch and what every rank does are
in :mod:`adapterdrop.distributed`. Method and record fields: docs/distributed.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from adapterdrop.commands import AddCommand
from adapterdrop.commands.options import (
    DTYPES,
    RESULTS_DIR,
    add_model_option,
    non_negative_int,
    positive_float,
    positive_int,
)
from adapterdrop.errors import AdapterDropError

#: what ``adapterdrop ddp`` measures when no --variant is given (the issue's four; n=5 as in the paper)
DEFAULT_VARIANTS = ("full", "adapter", "adapterdrop:n=5", "adapterdrop:robust")
DEFAULT_RESULTS = RESULTS_DIR / "ddp.jsonl"


def world_sizes(text: str) -> tuple[int, ...]:
    """``1,2,4`` -> (1, 2, 4), ascending, each a positive integer."""
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        sizes = ()
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas, got '{text}'")
    return sizes


def devices_of(text: str) -> tuple[str, dict[str, str], int | None]:
    """``cpu``, ``cuda``/``all`` (every visible GPU) or ``cuda:0,cuda:2`` -> (device kind, variables for the
    ranks, GPUs available to one machine's ranks)."""
    import torch

    items = [part.strip() for part in text.split(",") if part.strip()]
    if items == ["cpu"]:
        return "cpu", {}, None
    if not torch.cuda.is_available():
        raise AdapterDropError(f"--device {text}: CUDA is not available on this machine")
    if items in (["cuda"], ["all"]):
        return "cuda", {}, torch.cuda.device_count()
    if not all(item.startswith("cuda:") and item[5:].isdigit() for item in items):
        raise AdapterDropError(
            f"--device must be cpu, cuda, all or a list such as cuda:0,cuda:1; got '{text}'"
        )
    indices = [int(item[5:]) for item in items]
    missing = [i for i in indices if i >= torch.cuda.device_count()]
    if missing:
        raise AdapterDropError(
            f"--device {text}: {torch.cuda.device_count()} GPU(s) visible, no cuda:{missing[0]}"
        )
    return "cuda", {"CUDA_VISIBLE_DEVICES": ",".join(map(str, indices))}, len(indices)


def plan_job(args: argparse.Namespace, kind: str, world: int) -> Any:
    """The :class:`~adapterdrop.distributed.job.DDPJob` of the command line, through the planner."""
    import dataclasses

    from adapterdrop.backends import REGISTRY, parse_variant
    from adapterdrop.distributed.job import COMPARISON, DDPJob, default_world_sizes
    from adapterdrop.measure.timing import TimingConfig
    from adapterdrop.plan import check_variants_fit, expand_groups, preset_from_flags, with_overrides

    variants = args.variant or list(DEFAULT_VARIANTS)
    for name in variants:
        if REGISTRY[parse_variant(name).name].inference_only:
            raise AdapterDropError(f"{name} is an inference-only variant; data-parallel runs train")
    timing = TimingConfig()
    timing = dataclasses.replace(
        timing,
        rounds=args.rounds or timing.rounds,
        min_sample_time_s=args.min_sample_time or timing.min_sample_time_s,
        warmup_steps=timing.warmup_steps if args.warmup is None else args.warmup,
    )
    preset = with_overrides(
        preset_from_flags(
            variants,
            baseline=args.baseline,
            phases=["train"],
            batch_sizes=[args.batch_size],
            seq_lens=[args.seq_len],
            comparison=COMPARISON,
        ),
        models=[args.model] if args.model else None,
        devices=["cpu"],  # the ranks pick their devices; the planner only names and checks the scenarios
        dtypes=[args.dtype] if args.dtype else None,
        precision=args.precision,
        threads=args.threads or 1,
        timing=timing,
    )
    (group,) = expand_groups(preset)
    check_variants_fit(group.baseline.model, [s.variant for s in group.scenarios])
    sizes = args.world_sizes or default_world_sizes(world)
    if sizes[-1] > world:
        raise AdapterDropError(f"--world-sizes {','.join(map(str, sizes))}: the launch has {world} processes")
    return DDPJob(
        model=group.baseline.model,
        variants=tuple(s.variant for s in group.scenarios),
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        world_sizes=sizes,
        results=str(Path(args.results or DEFAULT_RESULTS).resolve()),
        unused_modes=("per-draw", "find") if args.unused == "both" else (args.unused,),
        device=kind,
        backend=args.backend or "",
        bucket_cap_mb=args.bucket_cap_mb,
        dtype=group.baseline.dtype,
        precision=group.baseline.precision,
        threads=group.baseline.threads,
        timing=timing,
    )


def cmd_ddp(args: argparse.Namespace) -> int:
    from adapterdrop.distributed.launch import launch
    from adapterdrop.results import check_writable

    kind, environment, gpus = devices_of(args.device)
    nproc = args.nproc or gpus
    if nproc is None:
        raise AdapterDropError("give --nproc N: the processes to start on this machine")
    if gpus is not None and nproc > gpus:
        raise AdapterDropError(
            f"--nproc {nproc} on {gpus} GPU(s): several processes on one GPU are not a scaling result "
            "(and NCCL refuses a shared GPU); use at most one process per GPU"
        )
    if args.nnodes > 1 and not args.rdzv_endpoint:
        raise AdapterDropError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT (the same on every machine)")
    job = plan_job(args, kind, nproc * args.nnodes)
    check_writable(Path(job.results))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if kind == "cpu" and nproc * job.threads > cores:
        print(
            f"adapterdrop: warning: {nproc} processes x {job.threads} thread(s) share {cores} cores: "
            "the records say so, and they are not a scaling result",
            file=sys.stderr,
        )
    launch(
        job,
        nproc=nproc,
        nnodes=args.nnodes,
        rdzv_endpoint=args.rdzv_endpoint,
        rdzv_id=args.rdzv_id,
        environment=environment,
    )
    print(f"records of {len(job.world_sizes)} world size(s) appended to {job.results} by rank 0")
    return 0


def register(add: AddCommand) -> None:
    ddp = add(
        "ddp",
        cmd_ddp,
        "train each variant data-parallel (DistributedDataParallel through torchrun) at world sizes 1..N; "
        "throughput, scaling efficiency, bytes all-reduced per step, communication time and overlap",
    )
    ddp.add_argument(
        "--nproc", type=positive_int, help="processes per machine (required on the CPU; default: one per GPU)"
    )
    ddp.add_argument("--nnodes", type=positive_int, default=1, help="machines (default 1)")
    ddp.add_argument(
        "--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous of several machines (torchrun's)"
    )
    ddp.add_argument("--rdzv-id", default="adapterdrop-ddp", help="rendezvous id, the same on every machine")
    ddp.add_argument(
        "--variant",
        action="append",
        metavar="VARIANT",
        help=f"repeatable; default {', '.join(DEFAULT_VARIANTS)}",
    )
    ddp.add_argument("--baseline", help="variant the others are compared with (default: the first)")
    add_model_option(ddp, "bert-small")
    ddp.add_argument("--batch-size", type=positive_int, default=8, help="sequences per step and process (8)")
    ddp.add_argument("--seq-len", type=positive_int, default=128, help="tokens per sequence (default 128)")
    ddp.add_argument(
        "--device",
        default="cpu",
        help="cpu (gloo), cuda or all (one process per visible GPU, NCCL), or a list such as cuda:0,cuda:1",
    )
    ddp.add_argument("--backend", choices=("gloo", "nccl"), help="default: gloo on cpu, nccl on GPUs")
    ddp.add_argument(
        "--world-sizes",
        type=world_sizes,
        metavar="1,2,...",
        help="world sizes to measure, each at most nproc x nnodes (default 1, powers of two, and all)",
    )
    ddp.add_argument("--bucket-cap-mb", type=positive_int, default=25, help="DDP's bucket cap in MiB (25)")
    ddp.add_argument(
        "--unused",
        choices=("per-draw", "find", "both"),
        default="per-draw",
        help="robust AdapterDrop's unused adapters: one DDP wrapper per draw (default), "
        "find_unused_parameters=True, or both side by side",
    )
    ddp.add_argument("--threads", type=positive_int, help="torch threads per process (default 1)")
    ddp.add_argument("--dtype", choices=DTYPES, help="default fp32")
    ddp.add_argument("--precision", choices=("native", "autocast"), help="default: autocast for fp16/bf16")
    ddp.add_argument("--rounds", type=positive_int, help="interleaved timing rounds (default 7)")
    ddp.add_argument("--min-sample-time", type=positive_float, metavar="SECONDS", help="default 0.1")
    ddp.add_argument("--warmup", type=non_negative_int, metavar="STEPS", help="warm-up steps (default 2)")
    ddp.add_argument("--results", type=Path, help=f"results file (default {DEFAULT_RESULTS})")
