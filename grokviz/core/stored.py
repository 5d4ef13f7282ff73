"""What every config family shares: JSON in and out, ``replace``, and the field-kind checks.

``Config`` (modular arithmetic) and ``DigitsConfig`` (the adder) are frozen dataclasses that mix
this in; each keeps its own fields and validation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import fields
from typing import Any, TypeVar

from grokviz.errors import GrokvizError

T = TypeVar("T", bound="StoredConfig")


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
