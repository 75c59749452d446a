"""Single-task training and inference: adapters and AdapterDrop against full fine-tuning."""

from __future__ import annotations

from conftest import measure


def test_training_step_speedups(benchmark, settings):
    drop = f"adapterdrop:n={settings.dropped}"
    records = measure(
        benchmark,
        settings,
        "train",
        "full",
        ["adapter", "adapter:placement=houlsby", drop, "adapterdrop:robust"],
    )
    benchmark.extra_info["optimizer"] = records[0].optimizer
    speed = {r.variant: r.speedup for r in records}
    assert speed["adapter"] > 1, speed  # the paper: adapter steps up to 60% faster than full fine-tuning
    assert speed[drop] > speed["adapter"], speed


def test_inference_adapter_overhead(benchmark, settings):
    measure(benchmark, settings, "infer", "full", ["adapter", f"adapterdrop:n={settings.dropped}"])
