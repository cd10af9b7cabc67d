"""The stored dataclass methods (ci_gate.dataclass_cache): the same functions, compiled once."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ci_gate import dataclass_cache

pytestmark = pytest.mark.skipif(getattr(dataclasses, "_create_fn", None) is not dataclass_cache._create_fn,
                                reason="this interpreter's dataclasses is not the one the cache reproduces")


def _make_class(name: str) -> type:
    return dataclasses.make_dataclass(name, [("path", str), ("size", int, dataclasses.field(default=0)),
                                             ("tags", tuple, dataclasses.field(default=()))], frozen=True)


def _methods(cls: type) -> dict[str, Any]:
    return {name: getattr(cls, name).__code__ for name in ("__init__", "__repr__", "__eq__", "__hash__",
                                                           "__setattr__", "__delattr__")}


@pytest.fixture
def stored_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "__pycache__" / "methods.marshal"
    monkeypatch.setattr(dataclass_cache, "_store_path", lambda: str(store))
    monkeypatch.setattr(dataclass_cache, "_codes", None)
    monkeypatch.setattr(dataclass_cache, "_added", False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return store


def test_methods_are_the_ones_dataclasses_compiles(stored_at: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = _make_class("Record")
    dataclass_cache._save()
    assert stored_at.is_file()
    monkeypatch.setattr(dataclass_cache, "_codes", None)  # the next class comes from the file
    from_file = _make_class("Record")
    monkeypatch.setattr(dataclasses, "_create_fn", dataclass_cache._original)
    compiled = _make_class("Record")
    assert _methods(cached) == _methods(compiled) == _methods(from_file)
    record = from_file("/etc/passwd", 3)
    assert record == from_file("/etc/passwd", 3) != from_file("/etc/passwd", 4)
    assert repr(record) == "Record(path='/etc/passwd', size=3, tags=())"
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.size = 5
    assert from_file.__init__.__annotations__ == compiled.__init__.__annotations__  # type: ignore[misc]


def test_a_damaged_store_is_compiled_again(stored_at: Path) -> None:
    stored_at.parent.mkdir()
    stored_at.write_bytes(b"\x00not marshal")
    record = _make_class("Damaged")("/bin/sh")
    assert record.path == "/bin/sh"
    dataclass_cache._save()
    assert stored_at.read_bytes() != b"\x00not marshal"


def test_nothing_is_written_where_bytecode_is_not(stored_at: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _make_class("Unwritten")
    dataclass_cache._save()
    assert not stored_at.parent.exists()


def test_another_create_fn_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def other_create_fn(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("never called")

    monkeypatch.setattr(dataclasses, "_create_fn", other_create_fn)
    dataclass_cache.install()
    assert dataclasses._create_fn is other_create_fn  # type: ignore[attr-defined]


def test_ci_gate_starts_with_the_cache_installed() -> None:
    probe = "import dataclasses, ci_gate, ci_gate.dataclass_cache as c; print(dataclasses._create_fn is c._create_fn)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "True"
