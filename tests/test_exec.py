"""Execution modes without compiling anything: the exec field and its keys, the execs axis of the planner,
the --exec flag, and the pieces of adapterdrop.measure.execution that need no compiler (draws pinned or
drawn, setup leaving no trace, the per-dtype comparison, recompilations counted)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter

import pytest
import torch
from helpers_models import tiny_config

from adapterdrop.backends import build_base, build_variant
from adapterdrop.cli import main
from adapterdrop.measure import execution
from adapterdrop.measure.execution import Execution, _Draws, _fresh_entry, _Snapshot, compare_outputs
from adapterdrop.measure.prepare import group_context, prepare_step
from adapterdrop.plan import PresetError, expand_groups, load_preset, preset_from_flags, with_overrides
from adapterdrop.scenario import KEY_FIELDS_V1, Record, Scenario, ScenarioError, canonical_exec, parse_exec


def scenario(**changes) -> Scenario:
    values = dict(model="tiny", variant="adapter", phase="infer", batch_size=2, seq_len=8)
    return Scenario(**{**values, **changes})


# ---------------------------------------------------------------------------------------------- the field


@pytest.mark.parametrize(
    ("text", "parsed", "canonical"),
    [
        ("eager", ("eager", ""), "eager"),
        ("cudagraph", ("cudagraph", ""), "cudagraph"),
        ("compile", ("compile", "default"), "compile"),
        ("compile:mode=default", ("compile", "default"), "compile"),
        ("compile:mode=max-autotune", ("compile", "max-autotune"), "compile:mode=max-autotune"),
    ],
)
def test_exec_names_parse_to_one_canonical_form(text, parsed, canonical):
    assert parse_exec(text) == parsed
    assert canonical_exec(text) == canonical
    assert scenario(exec=text, device="cuda").exec == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jit", "unknown exec 'jit'"),
        ("eager:mode=default", "takes no options"),
        ("compile:mode=fast", "mode=M, M one of default"),
        ("compile:backend=eager", "the one option is mode=M"),
    ],
)
def test_bad_exec_names_are_one_line_errors(text, message):
    with pytest.raises(ScenarioError, match=message) as caught:
        scenario(exec=text)
    assert "\n" not in str(caught.value)


def test_eager_keeps_the_key_stored_results_have_and_other_modes_get_their_own():
    """exec is hashed only when it differs from eager: a stored (pre-exec) key is still the eager key."""
    eager = scenario(exec="eager")
    fields = dataclasses.asdict(eager).items()
    stored = {name: value for name, value in fields if name in KEY_FIELDS_V1 and name != "exec"}
    text = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    assert eager.key == hashlib.sha1(text.encode()).hexdigest()
    compiled = scenario(exec="compile")
    assert len({eager.key, compiled.key, scenario(exec="compile:mode=max-autotune").key}) == 3
    assert eager.group != compiled.group  # one run per mode: a mode is a group of its own


def test_cudagraph_needs_a_cuda_device():
    with pytest.raises(ScenarioError, match="exec cudagraph needs a CUDA device, not 'cpu'"):
        scenario(exec="cudagraph")
    assert scenario(exec="cudagraph", device="cuda:0").exec == "cudagraph"  # no GPU needed to plan it


def test_records_carry_the_mode_and_read_old_records_as_eager():
    record = Record.for_scenario(scenario(exec="compile"), "ok", exec_setup_s=1.5, exec_recompiles=0)
    again = Record.from_dict(json.loads(json.dumps(record.to_dict())))
    assert (again.exec, again.exec_setup_s, again.exec_recompiles) == ("compile", 1.5, 0)
    assert again.scenario == scenario(exec="compile")
    stored = Record.for_scenario(scenario(), "ok").to_dict()
    assert Record.from_dict({k: v for k, v in stored.items() if not k.startswith("exec")}).exec == "eager"


# ---------------------------------------------------------------------------------------------- planning


def test_each_mode_of_a_cell_is_a_group_of_its_own_planned_back_to_back():
    preset = with_overrides(
        preset_from_flags(["full", "adapter"], phases=["infer"], batch_sizes=[1, 2]),
        models=["tiny"],
        execs=["eager", "compile:mode=default", "compile"],
    )
    groups = expand_groups(preset)
    assert [(g.baseline.batch_size, g.baseline.exec) for g in groups] == [
        (1, "eager"),
        (1, "compile"),
        (2, "eager"),
        (2, "compile"),
    ]
    for group in groups:
        assert len({s.exec for s in group.scenarios}) == 1 and len({s.group for s in group.scenarios}) == 1
        assert [s.variant for s in group.scenarios] == ["full", "adapter"]


def test_a_preset_names_its_execs(tmp_path):
    path = tmp_path / "modes.toml"
    path.write_text(
        'models = ["tiny"]\nexecs = ["eager", "compile:mode=max-autotune"]\n'
        '[[comparison]]\nname = "c"\nbaseline = "full"\nvariants = ["adapter"]\nphases = ["infer"]\n'
    )
    assert load_preset(path).execs == ("eager", "compile:mode=max-autotune")
    cpu = load_preset("exec")  # the shipped CPU preset: every group once eager, once compiled
    assert [g.baseline.exec for g in expand_groups(cpu)][:2] == ["eager", "compile"]
    path.write_text(path.read_text().replace("max-autotune", "fastest"))
    with pytest.raises(PresetError, match=r"modes.toml: exec 'compile:mode=fastest'"):
        load_preset(path)


def test_cudagraph_on_the_cpu_is_a_plan_time_error():
    preset = with_overrides(preset_from_flags(["adapter"]), execs=["cudagraph"], devices=["cuda"])
    with pytest.raises(PresetError, match="exec cudagraph needs a CUDA device, and the devices include cpu"):
        with_overrides(preset, devices=["cpu"])
    gpu_exec = load_preset("gpu-exec")
    assert gpu_exec.devices == ("cuda",) and set(gpu_exec.execs) == {"eager", "cudagraph"}
    targets = load_preset("gpu-exec-targets")  # the short GPU check: 16 groups of two variants
    assert targets.devices == ("cuda",) and set(targets.execs) == {"eager", "cudagraph"}
    cells = [(c.baseline, v, b) for c in targets.comparisons for v in c.variants for b in c.batch_sizes]
    assert len(cells) * len(targets.dtypes) * len(targets.execs) == 16


def run(capsys, *argv: str) -> tuple[int, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["sweep", "--variant", "adapter", "--exec", "jit"], 2, "argument --exec: unknown exec 'jit'"),
        (["measure", "--variant", "adapter", "--exec", "cudagraph"], 1, "exec cudagraph needs a CUDA device"),
        (["sweep", "--preset", "gpu-exec", "--device", "cpu"], 1, "exec cudagraph needs a CUDA device"),
    ],
)
def test_exec_flag_errors_are_one_line(capsys, argv, status, message):
    code, err = run(capsys, *argv)
    assert code == status
    assert err.startswith("adapterdrop: error: ") and message in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------- pieces


@pytest.fixture
def robust():
    config = tiny_config()
    return build_variant("adapterdrop:robust,max=3", config, base=build_base(config)).train()


def test_a_stochastic_step_draws_every_value_uniformly_unless_pinned(robust):
    draws = _Draws(robust)
    counts = Counter(draws.next() for _ in range(4000))
    assert set(counts) == set(robust.draw_values()) and min(counts.values()) > 900  # ~1000 each
    with robust.fixed_draw(2):  # the model's own pin (what the memory probe calls) pins the step too
        assert {draws.next() for _ in range(20)} == {2}
        assert robust.loss(torch.tensor([[5, 6, 7]]), torch.tensor([1])) is not None
    assert robust.drawn == []  # a pinned value is not a draw


def test_setup_steps_leave_no_trace(robust):
    params = [p for p in robust.parameters() if p.requires_grad]
    built = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    snapshot = _Snapshot(params)
    robust.loss(torch.tensor([[5, 6, 7]]), torch.tensor([1])).backward()
    optimizer.step()
    assert any(not torch.equal(p, b) for p, b in zip(params, built, strict=True))
    addresses = [p.data_ptr() for p in params]
    snapshot.restore(optimizer)
    assert all(torch.equal(p, b) for p, b in zip(params, built, strict=True))
    assert [p.data_ptr() for p in params] == addresses  # in place: a captured graph keeps its addresses
    states = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    assert states and all(not v.any() for v in states) and all(p.grad is None for p in params)


def test_outputs_are_compared_within_the_dtype_tolerance():
    want = {"loss": torch.tensor(2.0), "grad.w": torch.ones(3)}
    rtol, _ = execution.TOLERANCES["fp32"]
    close = {"loss": torch.tensor(2.0 * (1 + rtol / 2)), "grad.w": torch.ones(3)}
    assert compare_outputs(want, close, "fp32") == []
    off = {"loss": torch.tensor(2.0 * (1 + 20 * rtol)), "grad.v": torch.ones(3)}
    problems = compare_outputs(want, off, "fp32")
    assert problems[0] == "grad.v: not computed by eager" and problems[1] == "grad.w: missing"
    assert problems[2].startswith("loss: max |difference|")
    assert compare_outputs(want, off | {"grad.w": torch.ones(3)}, "bf16") == ["grad.v: not computed by eager"]


def test_every_step_compiles_its_own_entry():
    first, second = _fresh_entry(), _fresh_entry()
    assert first.__code__ is not second.__code__ and first(lambda: 3) == second(lambda: 4) - 1


def test_recompilations_are_counted_beyond_one_graph_per_draw_and_make_a_late_one_noisy():
    entries = [2]
    made = Execution(
        eager=None,
        setup_s=1.0,
        outputs=dict,
        draws=(0, 1),
        compiled_entries=lambda: entries[0],
        entries_after_setup=2,
    )
    assert made.recompiles() == 0 and made.noise() == []
    entries[0] = 3  # a guard failed during timing and dynamo compiled again
    fields = made.fields()
    assert fields["exec_recompiles"] == 1 and fields["exec_info"]["compiles_after_setup"] == 1
    assert made.noise() == ["1 compilation(s) after setup, inside warm-up or timed steps"]


def test_eager_is_the_step_prepare_builds():
    eager = scenario()
    prepared = prepare_step(eager, group_context(eager))
    assert prepared.execution is None


def test_flops_are_counted_on_the_eager_step_and_captured_memory_is_taken_as_read():
    """A graph replay runs no aten operator FLOP counting could see, and allocates nothing: the runner
    counts the FLOPs of the eager step the mode was made from and takes the memory read at capture."""
    from adapterdrop.measure import runner

    eager = prepare_step(scenario(), group_context(scenario()))
    read_at_capture = {"peak_memory_bytes": 123, "memory_kind": execution.GRAPH_POOL_KIND}
    made = Execution(eager=eager, setup_s=0.5, outputs=dict, memory=read_at_capture)
    replayed = dataclasses.replace(eager, step=lambda: None, execution=made)  # what a replay looks like
    counted = runner._describe(replayed)
    assert counted["flops_step"] == runner._describe(eager)["flops_step"] > 0
    runner._memory(replayed, counted)
    assert counted["peak_memory_bytes"] == 123 and counted["memory_kind"] == execution.GRAPH_POOL_KIND
