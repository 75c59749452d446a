"""What a backend is: a library of variants, how it builds them, and how to find its adapter modules.

A backend (``native``: this toolkit's bottleneck adapters; ``peft``: Hugging Face ``peft``'s methods)
declares, in one :class:`Backend` record:

- the variants it registers (:class:`~adapterdrop.variants.spec.VariantInfo`, one per name);
- whether its variants build on the group's shared frozen encoder (``shares_base``) or each on a deep
  copy of it (``peft`` wraps the encoder's modules in place, so it must never touch the shared one);
- how to find its adapter modules and parameters by name (regular expressions over names relative to the
  built variant), for the FLOP, memory and profile breakdowns: each :class:`AdapterPattern` names the
  kind (``adapter`` or ``fusion``) and, in its group ``layer``, the encoder layer it belongs to;
- the module paths that make the rows of the profiler's per-layer FLOP comparison (``profile_rows``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from adapterdrop.variants.spec import VariantInfo


@dataclass(frozen=True)
class AdapterPattern:
    """A regular expression found anywhere in a module or parameter name (``re.search``) that marks an
    adapter of ``kind``; its named group ``layer`` (if any) is the index of the encoder layer."""

    regex: str
    kind: str = "adapter"

    @cached_property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)


@dataclass(frozen=True)
class Backend:
    """One backend (see the module docstring)."""

    name: str
    summary: str
    variants: tuple[VariantInfo, ...]
    shares_base: bool
    adapter_modules: tuple[AdapterPattern, ...]
    adapter_parameters: tuple[AdapterPattern, ...]
    #: regex matched at the start of a module path; group 1 is the row (embeddings, a layer, the head)
    profile_rows: str

    def adapter_place(self, name: str, *, parameter: bool = True) -> tuple[int | None, str] | None:
        """``(layer index or None, kind)`` of an adapter parameter (or module, ``parameter=False``) called
        ``name``; None if ``name`` is not one of this backend's adapters."""
        for pattern in self.adapter_parameters if parameter else self.adapter_modules:
            match = pattern.compiled.search(name)
            if match:
                layer = match.groupdict().get("layer")
                return (int(layer) if layer is not None else None), pattern.kind
        return None

    def is_adapter_module(self, name: str) -> bool:
        """Whether the module called ``name`` (relative to the variant) is one of this backend's adapters."""
        return self.adapter_place(name, parameter=False) is not None
