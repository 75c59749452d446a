"""AdapterFusion over 8 adapters against pruning to 2, AdapterDrop for fusion, and the full model."""

from __future__ import annotations

from conftest import measure


def test_fusion_inference(benchmark, settings):
    records = measure(
        benchmark,
        settings,
        "infer",
        "fusion:adapters=8",
        ["full", "fusion:adapters=8,keep=2", f"fusion:adapters=8,n={settings.dropped}"],
    )
    speed = {r.variant: r.speedup for r in records}
    assert speed["fusion:adapters=8,keep=2"] > 1, speed  # the paper: pruning to 2 of 8 is 68% faster
