"""Decoder LLMs through the harness's one path (plan -> prepare -> measure -> records) on ``llama-tiny``:
every workload measured, bad input one line with exit 2, a model that cannot fit skipped with its figures,
and the llm presets plan and build."""

from __future__ import annotations

import pytest

from adapterdrop import sweep
from adapterdrop.cli import main
from adapterdrop.families import fit
from adapterdrop.plan import check_variants_fit, expand_groups, load_preset, preset_from_dict

LLM_TINY = {
    "models": ["llama-tiny"],
    "threads": 1,
    "timing": {"rounds": 3, "min_sample_time_s": 0.01, "warmup_steps": 1},
    "comparison": [
        {
            "name": "train",
            "phases": ["train"],
            "baseline": "full",
            "variants": ["lora", "lora:n=2", "lora:merged"],
            "batch_sizes": [2],
            "seq_lens": [16],
        },
        {
            "name": "serve",
            "phases": ["prefill", "decode"],
            "baseline": "full",
            "variants": ["lora", "lora:merged"],
            "batch_sizes": [2],
            "seq_lens": [16],
        },
    ],
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_every_decoder_workload_is_measured(tmp_path) -> None:
    records = sweep.run_sweep(preset_from_dict(LLM_TINY, "llm-tiny"), tmp_path / "r.jsonl")
    by = {(r.phase, r.variant): r for r in records}
    assert by[("train", "lora:merged")].status == "skipped"
    ok = [r for r in records if r.variant != "lora:merged" or r.phase != "train"]
    assert len(ok) == 9 and all(r.status == "ok" for r in ok), [(r.variant, r.error) for r in ok]
    assert all(r.flops_step > 0 and r.peak_memory_bytes > 0 for r in ok)
    train, drop = by[("train", "lora")], by[("train", "lora:n=2")]
    assert drop.flops_step < train.flops_step < by[("train", "full")].flops_step
    assert by[("decode", "full")].flops_step < by[("prefill", "full")].flops_step
    assert by[("train", "full")].optimizer.startswith("AdamW")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "llama-tiny", "--phase", "infer"], "(the decoder family) has no workload 'infer'"),
        (["--model", "tiny", "--phase", "decode"], "tiny (the encoder family) has no workload 'decode'"),
        (
            ["--model", "llama-tiny", "--phase", "decode", "--seq-len", "128"],
            "a prompt of 128 tokens and its new token does not fit llama-tiny: it has 128 positions",
        ),
        (["--model", "llama-tiny", "--phase", "decode", "--variant", "prefix"], "train workload only"),
    ],
)
def test_bad_decoder_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message) -> None:
    defaults = ["--variant", "full", "--batch-size", "1", "--seq-len", "8"]  # argv's own values win
    status, out, err = run(capsys, "measure", *defaults, *argv)
    assert status == 2 and out == ""
    assert err.startswith("adapterdrop: error: ") and message in err and err.count("\n") == 1


def test_a_model_that_cannot_fit_is_skipped_with_its_figures(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fit, "device_capacity", lambda label: 2**16)  # a 64 KiB machine
    data = {**LLM_TINY, "comparison": LLM_TINY["comparison"][:1]}
    records = sweep.run_sweep(preset_from_dict(data, "llm-tiny"), tmp_path / "r.jsonl")
    full = next(r for r in records if r.variant == "full")
    assert full.status == "skipped"
    assert "needs at least" in full.error and "on the host, which has 0.00 GiB" in full.error
    status = main(["measure", "--model", "llama-tiny", "--variant", "full", "--phase", "train"])
    assert status == 1


@pytest.mark.parametrize("name", ["llm", "llm-gpu"])
def test_the_llm_presets_plan_and_every_variant_builds(name: str) -> None:
    preset = load_preset(name)
    groups = expand_groups(preset, devices=["cpu"])
    assert {s.phase for g in groups for s in g.scenarios} == {"train", "prefill", "decode"}
    for model in preset.models:
        check_variants_fit(model, [s.variant for g in groups for s in g.scenarios if s.model == model])
