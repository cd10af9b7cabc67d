"""The one shape of every error serve answers with: an HTTP status and a one-line message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class StatusError(Exception):
    """A request serve cannot honour: the HTTP status, a one-line message that names no secret, and
    an optional detail object for the error body (Anchore's `detail`)."""

    def __init__(self, status: int, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
