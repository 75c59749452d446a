"""The report reads variant names without the registry (no torch): what it reads must be what the
registry parses."""

from __future__ import annotations

import pytest

from adapterdrop.backends import REGISTRY, parse_variant
from adapterdrop.report.names import OPTION_DEFAULTS, family, option, variant_sort_key


@pytest.mark.parametrize(("fam", "key"), sorted(OPTION_DEFAULTS))
def test_defaults_the_report_assumes_are_the_registry_defaults(fam: str, key: str) -> None:
    assert REGISTRY[fam].option(key).default == OPTION_DEFAULTS[fam, key]


NAMES = [
    "full",
    "adapter",
    "adapterdrop:n=5",
    "adapterdrop:robust",
    "adapterdrop:n=3,robust",
    "parallel:tasks=8",
    "parallel:tasks=8,n=5",
    "parallel:tasks=8,n=5,impl=loop",
    "separate:tasks=8,n=5",
    "fusion:adapters=8",
    "fusion:adapters=8,keep=2",
    "fusion:adapters=8,n=5",
]


@pytest.mark.parametrize("name", NAMES)
def test_options_read_from_a_canonical_name_are_the_parsed_ones(name: str) -> None:
    spec = parse_variant(name)
    assert spec.canonical == name and family(name) == spec.name
    for fam, key in OPTION_DEFAULTS:
        if fam == spec.name:
            assert option(name, key) == spec[key], key
    for key, value in spec.values:
        if key in name:
            assert option(name, key) == value, key


def test_variants_sort_baseline_first_then_options_numerically() -> None:
    names = ["parallel:tasks=2,n=10", "parallel:tasks=2,n=2", "parallel:tasks=2", "parallel:tasks=10"]
    ordered = sorted(names, key=lambda n: variant_sort_key(n, "parallel:tasks=2"))
    assert ordered == [
        "parallel:tasks=2",
        "parallel:tasks=2,n=2",
        "parallel:tasks=2,n=10",
        "parallel:tasks=10",
    ]
    assert sorted(
        ["fusion:adapters=8,keep=2", "fusion:adapters=8", "full"], key=lambda n: variant_sort_key(n, "full")
    ) == [
        "full",
        "fusion:adapters=8",
        "fusion:adapters=8,keep=2",
    ]
