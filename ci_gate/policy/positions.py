"""Reading a policy document's text: plain data, and the (line, column) of every node.

Two readers: `read_fast` (the C parsers, no positions) for the common valid document, and
`PositionedReader`, which composes the YAML node tree so every problem can name its line and
column. Both refuse a mapping that repeats a key (PyYAML silently keeps the last one).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from ci_gate.policy.model import Problem

Position = tuple[int, int]


class PositionedReader:
    """YAML/JSON → plain data plus (line, column) of every node, keyed by its path."""

    def __init__(self) -> None:
        self.positions: dict[tuple[Any, ...], Position] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def read(self, text: str, json_like: bool) -> Any:
        if json_like:
            try:
                json.loads(text)
            except json.JSONDecodeError as error:
                self.problems.append(Problem(f"invalid JSON: {error.msg}", error.lineno, error.colno))
                return None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            self.problems.append(Problem(f"invalid YAML: {error.problem or error}", line, column))
            return None
        except yaml.YAMLError as error:
            if json_like:  # valid JSON that PyYAML's 1.1 parser dislikes: no positions, still usable
                return json.loads(text)
            self.problems.append(Problem(f"invalid YAML: {error}"))
            return None
        if node is None:
            self.problems.append(Problem("the document is empty"))
            return None
        try:
            return self._convert(node, ())
        except yaml.MarkedYAMLError as error:  # a tag no safe loader constructs: `!0`, `!!python/object`
            mark = error.problem_mark or error.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            problem = str(error.problem or "invalid YAML")[:200]
            self.problems.append(Problem(f"invalid YAML: {problem}", line, column))
            return None

    def _convert(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                key = str(key)
                if key in result:
                    self.problems.append(
                        Problem(
                            f"duplicate key '{key}'",
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                        )
                    )
                result[key] = self._convert(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(child, (*path, index)) for index, child in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)


class _DuplicateKey(Exception):
    """A mapping repeats a key: the slow path reports where."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


_FastYamlBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastYamlLoader(_FastYamlBase):
    """libyaml's loader, refusing duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key_node, deep=True) for key_node, _ in node.value]
        if len(set(map(str, keys))) != len(keys):
            raise _DuplicateKey(str(keys))
        return super().construct_mapping(node, deep=deep)


def read_fast(text: str, json_like: bool) -> Any:
    """Data without positions (C parsers), or None when the careful reader must look."""
    try:
        if json_like:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        return yaml.load(text, Loader=_FastYamlLoader)  # a safe loader (libyaml SafeLoader)
    except (ValueError, yaml.YAMLError, _DuplicateKey, RecursionError):
        return None
