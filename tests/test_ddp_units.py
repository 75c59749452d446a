"""The parts of ``adapterdrop ddp`` that need no launch: planning, the torchrun command line, errors before
launching, intervals, and records from given samples (the launch itself: tests/test_ddp.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from adapterdrop.cli import main
from adapterdrop.distributed.checks import GradientCheck
from adapterdrop.distributed.intervals import overlap, paired_interval
from adapterdrop.distributed.job import DDPJob, DDPJobError, default_world_sizes
from adapterdrop.distributed.launch import first_error, torchrun_arguments
from adapterdrop.distributed.records import Measured, build_records
from adapterdrop.distributed.timing import Timed, timed_rounds
from adapterdrop.distributed.wrap import StepCount
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.measure.utilization import Peak


def job(**changes) -> DDPJob:
    values = dict(
        model="tiny",
        variants=("full", "adapter"),
        batch_size=2,
        seq_len=8,
        world_sizes=(1, 2),
        results="r.jsonl",
        timing=TimingConfig(rounds=3),
    )
    return DDPJob(**{**values, **changes})


@pytest.mark.parametrize(("world", "sizes"), [(1, (1,)), (2, (1, 2)), (6, (1, 2, 4, 6)), (8, (1, 2, 4, 8))])
def test_default_world_sizes_are_one_powers_of_two_and_all(world, sizes):
    assert default_world_sizes(world) == sizes


def test_a_job_survives_its_json_and_names_its_scenarios():
    planned = job(unused_modes=("per-draw", "find"), device="cpu")
    assert DDPJob.from_json(planned.to_json()) == planned
    scenarios = planned.scenarios(2, "find", "cpu")
    assert [s.variant for s in scenarios] == ["full", "adapter"]
    assert {(s.world_size, s.backend, s.bucket_cap_mb, s.ddp_unused, s.baseline) for s in scenarios} == {
        (2, "gloo", 25, "find", "full")
    }
    assert scenarios[0].group == scenarios[1].group != planned.scenarios(1, "find", "cpu")[0].group


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"device": "tpu"}, "cpu or cuda"),
        ({"unused_modes": ("ignore",)}, "find or per-draw"),
        ({"world_sizes": (0, 2)}, "positive"),
        ({"bucket_cap_mb": 0}, "at least 1 MiB"),
    ],
)
def test_a_job_that_cannot_run_says_why(changes, message):
    with pytest.raises(DDPJobError, match=message):
        job(**changes)


def test_torchrun_arguments_for_one_machine_and_for_several():
    one = torchrun_arguments("job.json", nproc=2)
    assert one == [
        "--nproc-per-node=2",
        "--nnodes=1",
        "--standalone",
        "--module",
        "adapterdrop.distributed.worker",
        "job.json",
    ]
    several = torchrun_arguments("job.json", nproc=4, nnodes=2, rdzv_endpoint="head:29500", rdzv_id="run7")
    assert "--standalone" not in several
    assert {"--rdzv-backend=c10d", "--rdzv-endpoint=head:29500", "--rdzv-id=run7", "--nnodes=2"} <= set(
        several
    )


def test_the_launcher_reports_the_rank_that_failed_first(tmp_path):
    (tmp_path / "rank-0.txt").write_text("20.5\trank 0: RuntimeError: Connection closed by peer\n")
    (tmp_path / "rank-1.txt").write_text("20.25\trank 1: OutOfMemoryError: CUDA out of memory\n")
    assert first_error(tmp_path) == "rank 1: OutOfMemoryError: CUDA out of memory"
    assert first_error(tmp_path / "none") is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ddp", "--model", "tiny"], "give --nproc N"),
        (["ddp", "--nproc", "2", "--world-sizes", "1,4"], "the launch has 2 processes"),
        (["ddp", "--nproc", "2", "--model", "tiny", "--variant", "parallel:tasks=2"], "inference-only"),
        (["ddp", "--nproc", "2", "--model", "tiny", "--variant", "adapterdrop:n=9"], "out of range"),
        (["ddp", "--nproc", "2", "--nnodes", "2"], "--rdzv-endpoint"),
        (["ddp", "--nproc", "2", "--world-sizes", "0,1"], "positive integers"),
    ],
)
def test_bad_input_is_one_line_before_anything_is_launched(capsys, argv, message):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse usage errors
        status = exc.code
    err = capsys.readouterr().err
    assert status in (1, 2) and err.startswith("adapterdrop: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "ddp: torchrun" not in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_run_without_a_gpu_is_one_line(capsys):
    assert main(["ddp", "--device", "cuda", "--model", "tiny"]) == 1
    assert "CUDA is not available" in capsys.readouterr().err


def test_ddp_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ddp", "--help"])
    assert exc.value.code == 0 and "--unused" in capsys.readouterr().out


def test_paired_interval_is_reproducible_and_holds_the_statistic():
    step, silent = [1.0, 1.1, 0.9, 1.05, 0.95], [0.8, 0.85, 0.75, 0.8, 0.82]
    first = paired_interval(lambda a, b: a - b, [step, silent])
    assert first == paired_interval(lambda a, b: a - b, [step, silent])
    assert first[0] <= np.median(step) - np.median(silent) <= first[1]
    assert paired_interval(lambda a, b: a - b, [step[:2], silent[:2]]) is None  # too few rounds


def test_overlap_is_the_hidden_share_of_communication_clipped():
    assert overlap(1.0, 0.9, 0.4) == pytest.approx(0.75)  # 0.1 s of 0.4 s exposed
    assert overlap(1.0, 1.2, 0.4) == 1.0 and overlap(2.0, 1.0, 0.4) == 0.0 and overlap(1.0, 0.9, 0.0) == 0.0


def measured(planned: DDPJob, size: int, variant: str, step: list[float], agree: bool = True) -> Measured:
    scenario = next(s for s in planned.scenarios(size, "per-draw", "cpu") if s.variant == variant)
    count = StepCount(bytes=400, buckets=[(100, None)], expected_bytes=400, ddp_bucket_bytes=[400])
    return Measured(
        scenario=scenario,
        facts={"flops_step": 1000 if variant == "full" else 500, "params_trainable": 100},
        counts={None: count},
        check=GradientCheck(1, 0.0 if agree else 0.5, 0.0, True, agree),
        wrappers=1,
        samples={"step": step, "silent": [t * 0.9 for t in step], "comm": [t * 0.2 for t in step]},
        numbers={"step": 1, "silent": 1, "comm": 1},
    )


def test_records_pair_variants_and_world_sizes_of_one_run():
    planned = job()
    rows = [
        measured(planned, 1, "full", [1.0, 1.0, 1.0]),
        measured(planned, 1, "adapter", [0.5, 0.5, 0.5]),
        measured(planned, 2, "full", [1.25, 1.25, 1.25]),
        measured(planned, 2, "adapter", [0.5, 0.5, 0.5], agree=False),
    ]
    records = build_records(
        rows,
        timing=planned.timing,
        run_id="r",
        created_at="t",
        env={},
        load={},
        launch={"nodes": 1},
        peak=Peak(4000.0, "measured: a test peak"),
    )
    single_full, single_adapter, full, adapter = records
    # one process's FLOPs per second of its step, against one device's peak
    assert full.achieved_flops_s == pytest.approx(800.0) and full.mfu == pytest.approx(0.2)
    assert full.peak_flops_source == "measured: a test peak" and adapter.mfu is None
    assert single_adapter.speedup == 2.0 and single_adapter.ideal_speedup == 2.0
    assert full.scaling_efficiency == pytest.approx(0.8) and full.throughput_samples_s == pytest.approx(3.2)
    assert full.comm_exposed_s == pytest.approx(0.125) and full.comm_overlap == pytest.approx(0.5)
    assert single_full.comm_overlap is None  # nothing travels between processes at world size 1
    assert adapter.status == "error" and "gradients are wrong" in adapter.error
    assert adapter.time_median_s is None and adapter.ddp["grads_agree"] is False


class _OneRank:
    """A team of one: every barrier passes, every max is the rank's own value."""

    def barrier(self) -> None:
        pass

    def max(self, value: float) -> float:
        return value


def test_timed_rounds_give_seconds_per_step_of_a_cycle():
    items = [
        Timed("cycle", 1, lambda: time.sleep(0.008), steps=4),  # 4 steps of 2 ms per call
        Timed("one", 1, lambda: time.sleep(0.002)),
    ]
    samples = timed_rounds(_OneRank(), items, {"cycle": 1, "one": 4}, threads=1, rounds=3)
    assert len(samples["cycle"]) == len(samples["one"]) == 3
    assert all(0.002 <= seconds < 0.004 for seconds in samples["cycle"])
    assert all(seconds >= 0.002 for seconds in samples["one"])
