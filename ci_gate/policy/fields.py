"""Reading the fields of a policy document: the typed accessors every part of validation uses.

`FieldReader` turns plain data plus positions into checked values, and records each problem
with the line and column of the offending node (an error, or a warning where anchore-engine
accepts the document).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ci_gate.policy.model import Problem
from ci_gate.policy.positions import Position, PositionedReader


def nearest(name: object, choices: Iterable[str]) -> str:
    # A YAML key may be null or a number (`?` alone is {None: None}), and any length: never a crash.
    close = difflib.get_close_matches(str(name)[:200], list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 date-time (`2026-12-30T12:00:00Z`, offsets allowed); a bare date is rejected, as in Anchore."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", text.strip()):
        raise ValueError(text)
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value.astimezone(timezone.utc)


class FieldReader:
    """Typed access to a document's fields; problems go to `problems`, warnings also to `warnings`."""

    def __init__(self, reader: PositionedReader, strict: bool) -> None:
        self.reader = reader
        self.strict = strict
        self.problems = reader.problems
        self.warnings: list[str] = []
        self.lenient = False
        """True while reading a v1 bundle: anchore-engine's schema lets unknown fields pass everywhere."""

    def at(self, path: tuple[Any, ...]) -> Position:
        while path and path not in self.reader.positions:
            path = path[:-1]
        return self.reader.positions.get(path, (0, 0))

    def error(self, path: tuple[Any, ...], message: str) -> None:
        line, column = self.at(path)
        self.problems.append(Problem(message, line, column))

    def warn(self, path: tuple[Any, ...], message: str) -> None:
        line, column = self.at(path)
        self.problems.append(Problem(message, line, column, "warning"))
        self.warnings.append(message)

    # generic field access
    def obj(self, value: Any, path: tuple[Any, ...], what: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, got {kind_of(value)}")
            return None
        return value

    def fields(
        self, value: Any, path: tuple[Any, ...], what: str, allowed: Iterable[str], lenient: bool = False
    ) -> dict[str, Any] | None:
        """`value` as a mapping with its unknown fields reported (see `keys`), or None when it is not one."""
        data = self.obj(value, path, what)
        if data is not None:
            self.keys(data, path, what, allowed, lenient)
        return data

    def keys(
        self, data: dict[str, Any], path: tuple[Any, ...], what: str, allowed: Iterable[str], lenient: bool = False
    ) -> None:
        """Unknown fields: an error, or a warning where anchore-engine's schema lets them pass (`lenient`).

        `comment` is accepted on every object: Anchore's own published bundles put it everywhere."""
        allowed = [*allowed, *(() if "comment" in allowed else ("comment",))]
        for key in data:
            if key not in allowed:
                message = f"unknown field '{key}' in {what}{nearest(key, allowed)}; allowed: {', '.join(allowed)}"
                if lenient or self.lenient:
                    self.warn((*path, key), message + "; it is ignored")
                else:
                    self.error((*path, key), message)

    def text(
        self,
        data: dict[str, Any],
        key: str,
        path: tuple[Any, ...],
        what: str,
        required: bool = True,
        default: str = "",
    ) -> str:
        if key not in data or data[key] is None:
            if required:
                self.error(path, f"{what} is missing the required field '{key}'")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.error((*path, key), f"'{key}' in {what} must be a string, got {kind_of(value)}")
            return default
        return str(value)

    def items(
        self, data: dict[str, Any], key: str, path: tuple[Any, ...], what: str, required: bool = True
    ) -> list[Any]:
        if key not in data or data[key] is None:
            if required:
                self.error(path, f"{what} is missing the required field '{key}'")
            return []
        value = data[key]
        if not isinstance(value, list):
            self.error((*path, key), f"'{key}' in {what} must be a list, got {kind_of(value)}")
            return []
        return value

    def strings(
        self, data: dict[str, Any], key: str, path: tuple[Any, ...], what: str, required: bool = True
    ) -> tuple[str, ...]:
        result = []
        for index, value in enumerate(self.items(data, key, path, what, required)):
            if not isinstance(value, str):
                self.error((*path, key, index), f"'{key}' in {what} must hold strings, got {kind_of(value)}")
                continue
            result.append(value)
        return tuple(result)

    def pattern(self, value: str, path: tuple[Any, ...], what: str, consequence: str) -> str:
        """A `regexp:` pattern that does not compile: a warning (anchore-engine accepts the document)."""
        if value.startswith("regexp:"):
            try:
                re.compile(value[len("regexp:") :])
            except re.error as error:
                self.warn(path, f"{what}: {value!r} is not a valid regular expression ({error}); {consequence}")
        return value

    def unique(self, entries: list[tuple[str, tuple[Any, ...]]], what: str) -> None:
        seen: dict[str, tuple[Any, ...]] = {}
        for entry_id, path in entries:
            if not entry_id:
                continue
            if entry_id in seen:
                line, _ = self.at(seen[entry_id])
                self.error(path, f"duplicate {what} id '{entry_id}' (first used at line {line})")
            else:
                seen[entry_id] = path

    def id_and_version(
        self, data: dict[str, Any], path: tuple[Any, ...], what: str, kind: str, original: str
    ) -> tuple[str, str]:
        """The `id` of a versioned object (a rule set, an allowlist) and its checked `version`."""
        object_id = self.text(data, "id", path, what)
        version = self.text(data, "version", path, f"{kind} '{object_id}'")
        self.version(version, (*path, "version"), original)
        return object_id, version

    def version(self, version: str, path: tuple[Any, ...], original: str) -> None:
        accepted = ("1_0",) if original == "v1" else ("2", "v2", "V2")
        if version and version not in accepted:
            self.error(path, f"unsupported version '{version}'; use {' or '.join(repr(a) for a in accepted)}")


UNDECIDABLE = "an evaluation that reaches this rule stops with an error (which rules apply cannot be decided)"


def entry_id_of(value: Any) -> str:
    return str(value.get("id", "")) if isinstance(value, dict) else ""


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
