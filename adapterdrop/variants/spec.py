"""Variant names: ``NAME[:key=value,...]`` parsed against a registry of variants and their options.

A bare key (``adapterdrop:robust``) sets a boolean option. The *canonical* name lists only the options
that differ from their defaults, in declared order, so ``adapter:reduction=16`` and ``adapter`` are the
same variant in every record. An option may have a *derived* default that depends on other options (the
adapter non-linearity follows the placement): left out, it takes that value, and the canonical name leaves
it out whenever it equals that value (``adapter:placement=houlsby,act=swish`` is
``adapter:placement=houlsby``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapterdrop.errors import VariantError


@dataclass(frozen=True)
class Option:
    """One ``key=value`` option of a variant."""

    name: str
    kind: type = field(metadata={"help": "int, str or bool"})
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    #: the default computed from the other options' values (``default`` is then None)
    derive: Callable[[Mapping[str, Any]], Any] | None = None

    def default_for(self, values: Mapping[str, Any]) -> Any:
        """This option's default given the values of the variant's other options."""
        return self.derive(values) if self.derive is not None else self.default

    def parse(self, variant: str, raw: str | None) -> Any:
        """The value of ``raw`` (None for a bare key), or :class:`VariantError` naming what is valid."""
        if self.kind is bool:
            if raw is None or raw.lower() in ("1", "true", "yes"):
                return True
            if raw.lower() in ("0", "false", "no"):
                return False
            raise VariantError(f"option '{self.name}' of '{variant}' takes true or false, not '{raw}'")
        if raw is None or raw == "":
            raise VariantError(f"option '{self.name}' of '{variant}' needs a value ({self.name}=...)")
        if self.kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise VariantError(
                    f"option '{self.name}' of '{variant}' takes an integer, not '{raw}'"
                ) from None
            if self.minimum is not None and value < self.minimum:
                raise VariantError(
                    f"option '{self.name}' of '{variant}' must be >= {self.minimum}, not {value}"
                )
            return value
        if self.choices and raw not in self.choices:
            raise VariantError(
                f"option '{self.name}' of '{variant}' takes one of {', '.join(self.choices)}, not '{raw}'"
            )
        return raw


@dataclass(frozen=True)
class VariantInfo:
    """A registered variant: its name, what it is, its options, and how it is built."""

    name: str
    summary: str
    options: tuple[Option, ...]
    build: Callable[..., Any]
    inference_only: bool = False

    def option(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        valid = ", ".join(o.name for o in self.options) or "none"
        raise VariantError(f"unknown option '{name}' for variant '{self.name}'; valid: {valid}")


@dataclass(frozen=True)
class VariantSpec:
    """A parsed variant: its name and the value of every option (defaults filled in)."""

    name: str
    values: tuple[tuple[str, Any], ...]

    def __getitem__(self, key: str) -> Any:
        return dict(self.values)[key]

    @property
    def canonical(self) -> str:
        """``NAME[:key=value,...]`` with only the non-default options, in declared order."""
        info = REGISTRY[self.name]
        parts = []
        for option in info.options:
            value = self[option.name]
            if value == option.default_for(dict(self.values)):
                continue
            parts.append(option.name if value is True else f"{option.name}={_format(value)}")
        return f"{self.name}:{','.join(parts)}" if parts else self.name

    def __str__(self) -> str:
        return self.canonical


def _format(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


REGISTRY: dict[str, VariantInfo] = {}


def register(info: VariantInfo) -> VariantInfo:
    """Add ``info`` to the registry (one entry per name)."""
    if info.name in REGISTRY:
        raise RuntimeError(f"variant '{info.name}' registered twice")
    REGISTRY[info.name] = info
    return info


def parse_variant(text: str | VariantSpec) -> VariantSpec:
    """Parse ``NAME[:key=value,...]``; raise :class:`VariantError` with one line on anything unknown."""
    if isinstance(text, VariantSpec):
        return text
    name, _, rest = text.strip().partition(":")
    if name not in REGISTRY:
        raise VariantError(f"unknown variant '{name}'; valid: {', '.join(REGISTRY)}")
    info = REGISTRY[name]
    values = {option.name: option.default for option in info.options}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, raw = item.partition("=")
        option = info.option(key.strip())
        values[option.name] = option.parse(name, raw.strip() if sep else None)
    for option in info.options:
        if values[option.name] is None and option.help.startswith("required"):
            raise VariantError(f"variant '{name}' needs option '{option.name}' ({option.name}=...)")
    for option in info.options:
        if values[option.name] is None and option.derive is not None:
            values[option.name] = option.derive(values)
    return VariantSpec(name, tuple(values.items()))
