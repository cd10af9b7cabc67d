"""Reading the fields of a JSON document someone else wrote (an SBOM, an OSV record), where a field of
the wrong kind means the document does not follow its format."""

from __future__ import annotations

from typing import Any


def optional_list(value: Any, what: str, error: type[ValueError] = ValueError) -> list[Any]:
    """A list-valued field that may be absent: [] for None (null or a missing key); `error`, naming the
    field (`what`) and what it is instead, for anything that is not a list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise error(f"{what} is a {type(value).__name__}, not a list")
    return value
