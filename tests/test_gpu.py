"""Checks that need an accelerator; skipped where torch sees no CUDA device."""

from __future__ import annotations

import pytest
import torch
from helpers_models import tiny_config, token_ids

from adapterdrop.backends import build_variant
from adapterdrop.measure.runner import measure_group
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.models.encoder import build_base
from adapterdrop.scenario import Scenario

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def exact_float32():
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = previous


def test_parallel_matches_separate_on_cuda():
    config = tiny_config()
    base = build_base(config).cuda().eval()
    ids = token_ids(config).cuda()
    parallel = build_variant("parallel:tasks=3,n=1", config, base=base, seed=2).cuda().eval()
    separate = build_variant("separate:tasks=3,n=1", config, base=base, seed=2).cuda().eval()
    with torch.inference_mode():
        assert torch.allclose(parallel(ids), separate(ids), atol=1e-5, rtol=1e-4)


def test_cuda_matches_cpu_for_fusion():
    config = tiny_config()
    model = build_variant("fusion:adapters=3,keep=2", config, seed=1).eval()
    ids = token_ids(config)
    with torch.inference_mode():
        on_cpu = model(ids)
        on_gpu = model.cuda()(ids.cuda()).cpu()
    assert torch.allclose(on_cpu, on_gpu, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("phase", "dtype", "precision"), [("train", "bf16", "autocast"), ("infer", "bf16", "native")]
)
def test_measure_group_on_cuda_records_accelerator_memory(phase, dtype, precision):
    scenarios = [
        Scenario("tiny", name, phase, 4, 32, "cuda:0", dtype, precision, threads=1, baseline="full")
        for name in ("full", "adapter")
    ]
    records = measure_group(scenarios, TimingConfig(rounds=3, min_sample_time_s=0.01), baseline="full")
    assert [r.status for r in records] == ["ok", "ok"], [r.error for r in records]
    assert all(r.memory_kind == "cuda_max_allocated" and r.peak_memory_bytes > 0 for r in records)
    assert records[1].speedup is not None and records[1].flops_step > 0
