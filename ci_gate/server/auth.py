"""Who is calling: HTTP basic auth as `admin` (password from the environment) or as `_api_key`
with an API key, and the `x-anchore-account` scope header (§1.1)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from ci_gate.server.store import ACCOUNT, Store

ADMIN_USER = "admin"
API_KEY_USER = "_api_key"
ACCOUNT_HEADER = "x-anchore-account"


class AuthFailure(Exception):
    """A request that may not proceed: the HTTP status (401 or 403) and a message that names no secret."""

    def __init__(self, status: int, message: str, detail: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def authenticate(headers: Mapping[str, str], store: Store, admin_password: str) -> str:
    """The account the request acts as; AuthFailure when the credentials or the account header are wrong."""
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise AuthFailure(401, "Unauthorized: HTTP basic authentication is required (user admin, or _api_key "
                               "with an API key)")
    try:
        username, separator, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise AuthFailure(401, "Unauthorized: the Authorization header is not valid basic authentication") from None
    if not separator:
        raise AuthFailure(401, "Unauthorized: the Authorization header is not valid basic authentication")
    account: str | None = None
    if username == ADMIN_USER:
        if hmac.compare_digest(password.encode(), admin_password.encode()):
            account = ACCOUNT
    elif username == API_KEY_USER:
        account = store.api_key_account(password)
    if account is None:
        raise AuthFailure(401, "Unauthorized: wrong username, password or API key")
    scoped = headers.get(ACCOUNT_HEADER, "").strip()
    if scoped and scoped != account:
        raise AuthFailure(403, f"Access Denied: no account {scoped!r} is accessible to this user "
                               f"(this server has only the {ACCOUNT!r} account)",
                          {"permission_required": "*", "account": scoped})
    return account
