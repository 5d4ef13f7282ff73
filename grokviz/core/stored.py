"""What every config family shares: JSON in and out, ``replace``, the error an invalid config
raises, and the checks its ``problems`` are written with.

``Config`` (modular arithmetic) and ``DigitsConfig`` (the adder) are frozen dataclasses that mix
this in; each keeps its own fields and says its own rules with :class:`Problems`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import fields
from typing import Any, TypeVar

from grokviz.errors import GrokvizError

T = TypeVar("T", bound="StoredConfig")

# How checkpoint weights may be stored (every family's ``save_dtype``).
SAVE_DTYPES = ("float32", "float16", "bfloat16")

# A torch.Generator seed is an unsigned 64-bit integer; grokviz keeps to the signed range.
SEED_LIMIT = 2**63


class ConfigError(GrokvizError):
    """An invalid config: ``problems`` is a list of (field, what is wrong and what is allowed),
    ``values`` the offending values. The message names each as ``field=value``; a command line
    names them by its flags instead (:meth:`as_flags`)."""

    def __init__(self, problems: list[tuple[str, str]], values: dict[str, Any]):
        self.problems, self.values = problems, values
        super().__init__("invalid config: " + "; ".join(f"{name}={values[name]!r} {text}" for name, text in problems))

    def as_flags(self) -> str:
        """The same problems in command-line words: ``--frac-train=1.5 must be strictly between 0 and 1``."""
        return "; ".join(f"--{name.replace('_', '-')}={self.values[name]!r} {text}" for name, text in self.problems)


class StoredConfig:
    """JSON round trip of a frozen config dataclass; unknown keys are an error (another format)."""

    KEYS_NAME = "config"  # how messages name this family's keys ("unknown config keys [...]")

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
        """Build from stored JSON; unknown keys are an error (they signal another format)."""
        if not isinstance(data, dict):
            raise GrokvizError(f"{source}: the config is not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GrokvizError(f"{source}: unknown {cls.KEYS_NAME} keys {unknown}; known keys are {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:  # a missing or unexpected argument
            raise GrokvizError(f"{source}: {exc}") from None
        except GrokvizError as exc:
            raise GrokvizError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls: type[T], text: str, source: str = "config") -> T:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise GrokvizError(f"{source}: the config is not valid JSON ({exc})") from None
        return cls.from_dict(data, source)


def has_kind(value: Any, kind: str) -> bool:
    """Whether a field value is of its declared kind (bools are not numbers; floats must be finite)."""
    if kind.endswith(" | None"):
        return value is None or has_kind(value, kind.removesuffix(" | None"))
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, str)


KIND_WORDS = {
    "int": "an integer",
    "int | None": "an integer or null",
    "float": "a finite number",
    "float | None": "a finite number or null",
    "str": "a string",
    "bool": "true or false",
}


class Problems:
    """The (field, what is wrong and what is allowed) pairs of one config, in the order found.

    Built by checking every field's declared kind first: a field of the wrong kind is reported
    once and left out of every later check (:meth:`ok`), so a string where a number belongs
    does not also fail a range test. The checks below say the rules both families share in one
    wording; a family adds its own with :meth:`add`."""

    def __init__(self, cfg: Any, problems: list[tuple[str, str]] | None = None) -> None:
        self.cfg = cfg
        self.list: list[tuple[str, str]] = problems if problems is not None else []
        self._bad: set[str] = set()
        for f in fields(cfg):
            kind = str(f.type)
            if not has_kind(getattr(cfg, f.name), kind):
                self.list.append((f.name, f"must be {KIND_WORDS[kind]}"))
                self._bad.add(f.name)

    def ok(self, *names: str) -> bool:
        """Whether every field of ``names`` has its declared kind (so it may be compared)."""
        return not self._bad.intersection(names)

    def add(self, name: str, text: str) -> None:
        self.list.append((name, text))

    def _each(self, names, bad, text: str) -> None:
        for name in names:
            if self.ok(name) and bad(getattr(self.cfg, name)):
                self.add(name, text)

    def at_least(self, minimum: int, *names: str) -> None:
        self._each(names, lambda v: not v >= minimum, f"must be at least {minimum}")  # NaN fails too

    def at_most(self, maximum: int, name: str, text: str | None = None) -> None:
        self._each([name], lambda v: v > maximum, text or f"must be at most {maximum}")

    def positive(self, *names: str) -> None:
        self._each(names, lambda v: not v > 0, "must be positive")

    def below_one(self, *names: str) -> None:
        """In [0, 1): Adam's betas, a dropout rate."""
        self._each(names, lambda v: not 0.0 <= v < 1.0, "must be in [0, 1)")

    def unit(self, *names: str) -> None:
        """In [0, 1]."""
        self._each(names, lambda v: not 0.0 <= v <= 1.0, "must be in [0, 1]")

    def seeds(self, *names: str) -> None:
        """Optional torch generator seeds."""
        self._each(
            names, lambda v: v is not None and not 0 <= v < SEED_LIMIT, "must be in [0, 2^63) (a torch generator seed)"
        )

    def one_of(self, name: str, allowed, text: str | None = None) -> None:
        self._each([name], lambda v: v not in allowed, text or f"must be one of {allowed}")
