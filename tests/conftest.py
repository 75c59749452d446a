"""Shared fixtures: fast timing settings and tiny sweep presets written to a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_models import roughen_norms, tiny_config

from adapterdrop.measure.timing import TimingConfig
from adapterdrop.models.encoder import build_base

REPO = Path(__file__).resolve().parent.parent

TINY_PRESET = """
description = "tiny end-to-end grid for tests"
models = ["tiny"]
devices = ["cpu"]
dtypes = ["fp32"]
threads = 1

[timing]
rounds = 3
min_sample_time_s = 0.01
warmup_steps = 1

[[comparison]]
name = "training"
phases = ["train"]
baseline = "full"
variants = ["adapter", "adapterdrop:n=2", "parallel:tasks=2"]
batch_sizes = [2]
seq_lens = [8]

[[comparison]]
name = "parallel"
phases = ["infer"]
baseline = "parallel:tasks={tasks}"
variants = ["parallel:tasks={tasks},n={n}"]
expand = { tasks = [2, 3], n = [0, 2] }
batch_sizes = [1, 2]
seq_lens = [8]
"""


@pytest.fixture
def fast_timing() -> TimingConfig:
    """Three rounds of samples of at least 10 ms: enough to exercise the harness, not to compare."""
    return TimingConfig(rounds=3, min_sample_time_s=0.01, warmup_steps=1)


@pytest.fixture
def tiny_preset(tmp_path: Path) -> Path:
    """Path of a preset file with a train comparison and a parallel-inference comparison on ``tiny``."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PRESET)
    return path


@pytest.fixture(scope="module")
def config():
    """The 4-layer, hidden-32 BERT config of the model tests."""
    return tiny_config()


@pytest.fixture(scope="module")
def base(config):
    """A frozen encoder of ``config`` (seed 0) in eval mode, shared by the variants of a test module."""
    return build_base(config, seed=0).eval()


@pytest.fixture(scope="module")
def rough_base(config):
    """A frozen encoder of ``config`` (seed 0) in eval mode whose LayerNorms are far from the identity, so a
    missing or extra LayerNorm in an adapter arrangement shows."""
    return roughen_norms(build_base(config, seed=0), seed=1).eval()
