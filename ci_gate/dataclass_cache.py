"""Dataclass methods compiled once, not at every start of ci-gate (a start-up cost, issue 18).

`@dataclass` writes the source text of each class's `__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__` ... and compiles it with `exec` while the class is created: in every process, for
every dataclass imported. A `ci-gate gate` on a cached analysis creates about 76 of them, and
compiling their ~450 methods was about a third of its start-up. Here the code objects are kept
beside ci-gate's bytecode (in `__pycache__`, under the interpreter's cache tag, as a `.pyc` is) and
`exec` is handed the stored code when the generated text is the same: the functions made are the
ones `dataclasses` would make, only their compilation is skipped.

This replaces `dataclasses._create_fn`, a private function, and so only where that function is
exactly the one reproduced below (its bytecode fingerprint is one of `_KNOWN_FINGERPRINTS`, taken
from CPython 3.10 and 3.11); anywhere else nothing changes.
The file is read with the trust of the `.pyc` files beside it, written only where Python writes
bytecode (not under PYTHONDONTWRITEBYTECODE or `-B`), atomically, and ignored when unreadable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import marshal
import os
import sys
import types
from typing import Any

_KNOWN_FINGERPRINTS = frozenset({
    "0ca38f0248e2e811fd5eac498df12ff95327a4e97a24e125e8b928589aa2ef66",  # CPython 3.10.13
    "d79718e03ccd7e2cfd72e099210781718f6ee556cfa34c1d8b3dc952801601a1",  # CPython 3.11.7
})
"""`fingerprint` of the `_create_fn` that `_create_fn` below reproduces (the same source text in both
versions; 3.12 names the return type differently, 3.13 has no such function)."""
_MAX_ENTRIES = 4096
"""A bound on the file: ci-gate's own classes need a few hundred; a process that makes classes on
the fly must not grow it without end."""

_codes: dict[str, bytes] | None = None
"""Generated text -> its code object, marshalled: unmarshalled one at a time, when that text comes
(loading all ~500 code objects at once cost as much as compiling the few a command needs)."""
_added = False
_original: Any = None
"""The function replaced, kept for comparison (tests)."""


def fingerprint(code: types.CodeType) -> str:
    """What `code` does, without where it was read from (file name and line numbers differ per install)."""
    digest = hashlib.sha256()

    def feed(item: types.CodeType) -> None:
        digest.update(item.co_code)
        digest.update(repr((item.co_names, item.co_varnames, item.co_freevars, item.co_cellvars,
                            item.co_argcount, item.co_kwonlyargcount, item.co_flags)).encode())
        for constant in item.co_consts:
            if isinstance(constant, types.CodeType):
                feed(constant)
            else:
                digest.update(repr(constant).encode())

    feed(code)
    return digest.hexdigest()


def _store_path() -> str | None:
    try:
        return os.path.join(os.path.dirname(importlib.util.cache_from_source(__file__)),
                            # The bytecode magic number too, as a .pyc's header carries it.
                            f"dataclass-methods.{sys.implementation.cache_tag}-"
                            f"{importlib.util.MAGIC_NUMBER.hex()}.marshal")
    except (NotImplementedError, ValueError):  # no cache tag: bytecode is not cached either
        return None


def _load() -> dict[str, bytes]:
    path = _store_path()
    if path is not None:
        try:
            with open(path, "rb") as handle:
                stored = marshal.load(handle)
            if isinstance(stored, dict):
                return stored
        except (OSError, EOFError, ValueError, TypeError):
            pass  # absent or damaged: compiled again, and written anew
    return {}


def _unmarshalled(stored: bytes) -> types.CodeType | None:
    try:
        code = marshal.loads(stored)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


def _save() -> None:
    path = _store_path()
    if not _added or _codes is None or path is None or sys.dont_write_bytecode:
        return
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "wb") as handle:
            marshal.dump(_codes, handle)
        os.replace(temporary, path)
    except OSError:  # a read-only install: the methods are compiled at each start, as without us
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _create_fn(name: str, args: list[str], body: list[str], *, globals: dict[str, Any] | None = None,
               locals: dict[str, Any] | None = None, return_type: Any = dataclasses.MISSING) -> Any:
    """`dataclasses._create_fn` of CPython 3.10 and 3.11, line for line, with the compiled text looked up first."""
    global _codes, _added
    if locals is None:
        locals = {}
    return_annotation = ""
    if return_type is not dataclasses.MISSING:
        locals["_return_type"] = return_type
        return_annotation = "->_return_type"
    joined_args = ",".join(args)
    joined_body = "\n".join(f"  {b}" for b in body)
    txt = f" def {name}({joined_args}){return_annotation}:\n{joined_body}"
    local_vars = ", ".join(locals.keys())
    txt = f"def __create_fn__({local_vars}):\n{txt}\n return {name}"
    if _codes is None:
        _codes = _load()
    stored = _codes.get(txt)
    code = _unmarshalled(stored) if stored is not None else None
    if code is None:
        # dont_inherit: compiled as `exec` in dataclasses compiles it, without this module's
        # `from __future__ import annotations` (which would turn the return annotation into a string).
        code = compile(txt, "<string>", "exec", dont_inherit=True)
        if len(_codes) < _MAX_ENTRIES:
            _codes[txt] = marshal.dumps(code)
            _added = True
    ns: dict[str, Any] = {}
    exec(code, globals, ns)  # what dataclasses itself runs, on the text it wrote
    return ns["__create_fn__"](**locals)


def install() -> None:
    """Use the stored methods for every dataclass created from now on, where that is safe (see above)."""
    original = getattr(dataclasses, "_create_fn", None)
    if not isinstance(original, types.FunctionType) or fingerprint(original.__code__) not in _KNOWN_FINGERPRINTS:
        return
    import atexit

    global _original
    _original = original
    dataclasses._create_fn = _create_fn  # type: ignore[attr-defined]
    atexit.register(_save)
