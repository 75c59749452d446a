"""Errors the toolkit raises for bad input.

Every error a user can cause is an :class:`AdapterDropError` (a ``ValueError``) whose message is one line
that names the bad value and the valid ones; the CLI prints it as ``adapterdrop: error: <message>`` and
exits non-zero instead of showing a traceback.
"""


class AdapterDropError(ValueError):
    """Base class of every user-facing error of the toolkit."""


class UnknownPresetError(AdapterDropError):
    """A model preset name that is not defined."""


class UnsupportedModelError(AdapterDropError):
    """A transformers config the layer runner cannot drive (not a BERT-style encoder)."""


class VariantError(AdapterDropError):
    """A variant name or option that does not parse or does not fit the model."""


class InferenceOnlyError(AdapterDropError):
    """A train-phase scenario of a variant that only runs inference (parallel, separate, merged LoRA)."""


class WorkloadError(AdapterDropError):
    """A workload the model's family does not have, or a sequence its positions do not cover."""
