"""The JSON codec of the model's frozen dataclasses: `to_dict`, `from_dict`, `write_json`.

Generic over any dataclass with type hints (it knows no model class by name): a field is converted
by its annotation, and each class's converter is built once and cached.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

T = TypeVar("T")



def to_dict(obj: Any) -> Any:
    """A JSON-ready structure for a model object (dataclasses, tuples, mappings, scalars)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _dumper(type(obj))(obj)
    return _dump_any(obj)


def write_json(obj: Any, out: typing.TextIO) -> None:
    """Write `to_dict(obj)` as compact JSON without building it whole: long lists of records (an
    image's files, its packages) are encoded one record at a time, so memory stays flat."""
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out.write("{")
        for position, item in enumerate(dataclasses.fields(obj)):
            out.write(("," if position else "") + encode(item.name) + ":")
            write_json(getattr(obj, item.name), out)
        out.write("}")
    elif isinstance(obj, tuple) and len(obj) > 64:
        # Encoded a few hundred records at a time: bounded memory, few encoder calls.
        out.write("[")
        for start in range(0, len(obj), 512):
            chunk = encode([_dump_any(item) for item in obj[start : start + 512]])
            out.write(("," if start else "") + chunk[1:-1])
        out.write("]")
    else:
        out.write(encode(_dump_any(obj)))


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild a model object from `to_dict` output; unknown keys are ignored, missing ones defaulted."""
    return typing.cast(T, _loader(cls)(data))


# Converters are built once per type from its annotations, so an analysis with 100,000 files
# round-trips through JSON at the cost of a few dict look-ups per field, not a type inspection.

_Convert = typing.Callable[[Any], Any]
_DUMPERS: dict[type, _Convert] = {}
_LOADERS: dict[Any, _Convert] = {}


def _dump_any(obj: Any) -> Any:
    dumper = _DUMPERS.get(type(obj))
    if dumper is not None:
        return dumper(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _dumper(type(obj))(obj)
    if isinstance(obj, (tuple, list)):
        return [_dump_any(item) for item in obj]
    if isinstance(obj, Mapping):
        return {str(key): _dump_any(value) for key, value in obj.items()}
    return obj


def _dumper(cls: type) -> _Convert:
    dumper = _DUMPERS.get(cls)
    if dumper is None:
        hints = typing.get_type_hints(cls)
        plan = [(f.name, _is_plain(hints[f.name])) for f in dataclasses.fields(cls)]

        def dumper(obj: Any) -> Any:
            return {name: getattr(obj, name) if plain else _dump_any(getattr(obj, name)) for name, plain in plan}

        _DUMPERS[cls] = dumper
    return dumper


def _is_plain(hint: Any) -> bool:
    """Whether values of this type are already JSON-ready (str, int, float, bool, None)."""
    if hint in (str, int, float, bool, type(None)):
        return True
    if typing.get_origin(hint) in (Union, types.UnionType):
        return all(_is_plain(arg) for arg in typing.get_args(hint))
    return False


def _identity(value: Any) -> Any:
    return value


def _loader(hint: Any) -> _Convert:
    loader = _LOADERS.get(hint)
    if loader is None:
        loader = _build_loader(hint)
        _LOADERS[hint] = loader
    return loader


def _build_loader(hint: Any) -> _Convert:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            return _identity
        inner = _loader(options[0])
        return lambda data: None if data is None else inner(data)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        fields = {f.name: _loader(hints[f.name]) for f in dataclasses.fields(hint) if f.init}
        cls = hint

        def load_dataclass(data: Any) -> Any:
            return cls(**{k: fields[k](v) for k, v in data.items() if k in fields})

        return load_dataclass
    if origin is tuple:
        item = _loader(typing.get_args(hint)[0])
        if item is _identity:
            return lambda data: tuple(data)
        return lambda data: tuple(item(value) for value in data)
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        args = typing.get_args(hint)
        value = _loader(args[1]) if len(args) == 2 else _identity
        if value is _identity:
            return lambda data: dict(data)
        return lambda data: {k: value(v) for k, v in data.items()}
    return _identity
