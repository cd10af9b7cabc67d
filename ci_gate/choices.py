"""`Choice`: the base of the enums that close a set of option values (`--fail-on`, `--comment` ...)."""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A closed set of option values. A member is its value wherever it goes: it compares equal to
    the string, and prints as it (`f"--fail-on {FailOn.WARN}"` is `--fail-on warn`)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(str(member.value) for member in cls)
