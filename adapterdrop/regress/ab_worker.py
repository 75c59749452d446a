"""One measuring process of ``adapterdrop regress --against``; run as a script, not imported.

``python ab_worker.py SPEC.json`` with the tree to measure first on ``PYTHONPATH``: it imports *that
tree's* ``adapterdrop`` and uses only the API every revision since the measurement core was rebuilt has
(``adapterdrop.measure.prepare.group_context`` / ``prepare_step`` and ``adapterdrop.scenario.Scenario``),
so the same worker measures the working tree and an older revision alike. It must not import
``adapterdrop.regress`` (an older revision has none).

SPEC holds ``threads``, ``warmup_steps``, ``min_sample_time_s``, ``samples`` and ``scenarios`` (scenario
fields plus the ``key`` the caller knows them by). For each scenario: build it on its group's shared
encoder, run the warm-up steps, calibrate the steps per sample (a sample lasts at least
``min_sample_time_s``), then take ``samples`` samples with ``torch.utils.benchmark.Timer`` (thread count
fixed). Prints one JSON line: ``{"adapterdrop": path imported, "seconds": {key: [seconds per step, ...]}}``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys


def main(spec_path: str) -> None:
    with open(spec_path) as handle:
        spec = json.load(handle)
    import torch
    from torch.utils.benchmark import Timer

    import adapterdrop
    from adapterdrop.measure.prepare import group_context, prepare_step
    from adapterdrop.scenario import Scenario

    threads = spec["threads"]
    torch.set_num_threads(threads)
    known = {f.name for f in dataclasses.fields(Scenario)}
    contexts: dict[str, object] = {}
    seconds: dict[str, list[float]] = {}
    for item in spec["scenarios"]:
        scenario = Scenario(**{name: value for name, value in item.items() if name in known})
        if scenario.group not in contexts:
            contexts.clear()  # one group's encoder at a time
            contexts[scenario.group] = group_context(scenario)
        ready = prepare_step(scenario, contexts[scenario.group])
        for _ in range(spec["warmup_steps"]):
            ready.step()

        def timer(step=ready.step) -> Timer:
            return Timer(stmt="step()", globals={"step": step}, num_threads=threads)

        number = max(1, math.ceil(spec["min_sample_time_s"] / timer().timeit(1).mean))
        seconds[item["key"]] = [timer().timeit(number).mean for _ in range(spec["samples"])]
    print(json.dumps({"adapterdrop": adapterdrop.__file__, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1])
