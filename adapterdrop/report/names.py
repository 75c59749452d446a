"""Reading canonical variant names without building anything (no torch).

A record stores its variant's *canonical* name (``adapterdrop.variants.spec``): ``NAME[:key=value,...]``
listing only the options that differ from their defaults, a bare key for a true boolean. So a reader
knows every option: the ones the name spells out, and the default for the rest. The report needs the
defaults of only the few options it selects by; :data:`OPTION_DEFAULTS` holds them, and
``tests/test_report_names.py`` checks each against the variant registry, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
from typing import Any

#: (family, option) -> the default of an option the report reads, for names that leave it out
OPTION_DEFAULTS: dict[tuple[str, str], Any] = {
    ("adapterdrop", "n"): None,
    ("adapterdrop", "robust"): False,
    ("parallel", "n"): 0,
    ("separate", "n"): 0,
    ("fusion", "n"): 0,
    ("fusion", "keep"): None,
}


def family(name: str) -> str:
    """The variant family of a canonical name: ``adapterdrop`` for ``adapterdrop:n=5``."""
    return name.partition(":")[0]


def _value(raw: str | None) -> Any:
    if raw is None or raw == "true":
        return True
    if raw == "false":
        return False
    return int(raw) if raw.isdigit() else raw


@functools.cache
def spelled_options(name: str) -> dict[str, Any]:
    """The options a name spells out, typed: ``parallel:tasks=8,n=5`` -> ``{"tasks": 8, "n": 5}``."""
    _, _, rest = name.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, raw = item.partition("=")
        options[key] = _value(raw if sep else None)
    return options


def option(name: str, key: str) -> Any:
    """The value of option ``key`` of a canonical name: spelled out, else its default (None if unknown)."""
    spelled = spelled_options(name)
    if key in spelled:
        return spelled[key]
    return OPTION_DEFAULTS.get((family(name), key))


def sort_key(value: Any) -> tuple[int, float, str]:
    """Orders numbers numerically and before anything else, which is ordered as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def variant_sort_key(name: str, baseline: str = "") -> tuple[Any, ...]:
    """Orders variant names: ``baseline`` first, then by family, then by the options the name spells out
    (numbers numerically), so that a name with fewer options comes first: ``fusion:adapters=8`` before
    ``fusion:adapters=8,keep=2``, ``parallel:tasks=2,n=2`` before ``parallel:tasks=2,n=10``."""
    options = tuple((key, sort_key(value)) for key, value in spelled_options(name).items())
    return (name != baseline, family(name), options)
