"""The encoder family's workloads: a classification training step and a classification forward.

Their steps are built by :mod:`adapterdrop.measure.prepare` (unchanged); a step produces B samples of S
tokens.
"""

from __future__ import annotations

from adapterdrop.workloads.base import Workload

TRAIN = Workload(
    "train", "encoder", "classification: forward, cross entropy, backward and a fused AdamW step", trains=True
)
INFER = Workload("infer", "encoder", "classification: one forward under inference mode", trains=False)
