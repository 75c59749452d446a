"""What a workload is: the step a scenario runs (its ``phase``) and what one step produces.

A :class:`Workload` belongs to one model family and names a step: the encoder family's ``train`` and
``infer`` (classification, built by :mod:`adapterdrop.measure.prepare`), the decoder family's ``train``
(causal-LM loss and an AdamW step), ``prefill`` and ``decode``. It says what one step produces
(:class:`Produced`: sequences and tokens, the numerators of a record's throughputs), how many positions it
uses beyond the scenario's ``seq_len`` (``decode``'s new token), and, where this package builds its step,
``prepare`` (scenario, variant, group context) -> :class:`~adapterdrop.measure.types.PreparedStep`.
Nothing here times anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapterdrop.measure.types import GroupContext, PreparedStep
from adapterdrop.scenario import Scenario
from adapterdrop.variants.base import VariantModel


@dataclass(frozen=True)
class Produced:
    """What one step produces: ``samples`` sequences and ``tokens`` tokens."""

    samples: int
    tokens: int


def every_token(scenario: Scenario) -> Produced:
    """A step over B sequences of S tokens: B samples, B x S tokens (train, infer, prefill)."""
    return Produced(scenario.batch_size, scenario.batch_size * scenario.seq_len)


@dataclass(frozen=True)
class Workload:
    """One workload of one family (see the module docstring)."""

    name: str
    family: str
    summary: str
    trains: bool
    produced: Callable[[Scenario], Produced] = every_token
    #: positions a step uses beyond ``seq_len`` (decode: its new token)
    extra_positions: int = 0
    prepare: Callable[[Scenario, VariantModel, GroupContext], PreparedStep] | None = None
