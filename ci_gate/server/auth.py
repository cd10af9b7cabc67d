"""Who is calling: HTTP basic auth as `admin` (password from the environment) or as `_api_key`
with an API key, and the `x-anchore-account` scope header (§1.1).

Authentication happens on the headers alone, before the body is read, and failed logins are
throttled per client address and per user (ci_gate.server.limits.LoginThrottle).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ci_gate.server.accounts import AccountDirectory
from ci_gate.server.limits import LoginThrottle
from ci_gate.server.status_error import StatusError
from ci_gate.server.store import ACCOUNT, ApiKeyRow, Store

ADMIN_USER = "admin"
API_KEY_USER = "_api_key"
ACCOUNT_HEADER = "x-anchore-account"


class AuthFailure(StatusError):
    """A request that may not proceed: the HTTP status (401 or 403) and a message that names no secret."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    account: str
    """The account the request acts as."""
    username: str
    """The user it authenticated as (`_api_key` for an API key)."""
    api_key: str | None = None
    """The name of the API key used, None for a password login (keys may not manage keys)."""


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str, str]:
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
    return username, password


KeyLookup = Callable[[str], "ApiKeyRow | None"]
"""The active key with a given value, in whichever account holds it."""


def authenticate_principal(headers: Mapping[str, str], store: Store, admin_password: str,
                           directory: AccountDirectory | None = None, find_key: KeyLookup | None = None) -> Principal:
    """The caller; AuthFailure when the credentials or the account header are wrong.

    The admin user (with its password) may act in another account with `x-anchore-account`, as in
    Anchore; anyone else only in their own."""
    username, password = _basic_credentials(headers)
    principal: Principal | None = None
    if username == ADMIN_USER:
        if hmac.compare_digest(password.encode(), admin_password.encode()):
            principal = Principal(account=ACCOUNT, username=ADMIN_USER)
    elif username == API_KEY_USER:
        key = (find_key or store.api_key_for_value)(password)
        if key is not None:
            principal = Principal(account=key.account, username=API_KEY_USER, api_key=key.name)
    elif directory is not None:
        account = directory.verify(username, password)
        if account is not None:
            principal = Principal(account=account, username=username)
    if principal is None:
        raise AuthFailure(401, "Unauthorized: wrong username, password or API key")
    scoped = headers.get(ACCOUNT_HEADER, "").strip()
    if (scoped and scoped != principal.account and principal.username == ADMIN_USER and directory is not None
            and directory.exists(scoped)):
        return Principal(account=scoped, username=ADMIN_USER)
    if scoped and scoped != principal.account:
        raise AuthFailure(403, f"Access Denied: no account {scoped[:80]!r} is accessible to this user",
                          {"permission_required": "*", "account": scoped[:80]})
    return principal


def authenticate(headers: Mapping[str, str], store: Store, admin_password: str) -> str:
    """The account the request acts as; AuthFailure when the credentials or the account header are wrong."""
    return authenticate_principal(headers, store, admin_password).account


def claimed_user(headers: Mapping[str, str]) -> str | None:
    """The user a request claims to be (for counting failures per user); None for API keys or no claim.

    A wrong API key names no user, so it counts only against the client address.
    """
    try:
        username, _ = _basic_credentials(headers)
    except AuthFailure:
        return None
    return None if username == API_KEY_USER else username[:128]


class Gatekeeper:
    """Authentication with throttling: the one entry point routes use."""

    def __init__(self, store: Store, admin_password: str, throttle: LoginThrottle | None = None,
                 directory: AccountDirectory | None = None, find_key: KeyLookup | None = None) -> None:
        self.store = store
        self.find_key = find_key
        self.admin_password = admin_password
        self.throttle = throttle or LoginThrottle()
        self.directory = directory

    def admit(self, client: str, headers: Mapping[str, str]) -> Principal:
        """The caller, or AuthFailure (wrong credentials) / Throttled (too many failures, credentials unchecked)."""
        user = claimed_user(headers)
        self.throttle.check(client, user)
        try:
            principal = authenticate_principal(headers, self.store, self.admin_password, self.directory,
                                               self.find_key)
        except AuthFailure as failure:
            # A request without credentials is not a guess: HTTP clients that wait for the challenge
            # (Apache HttpClient in the Jenkins plugin) send one before every authenticated request.
            if failure.status == 401 and headers.get("authorization"):
                self.throttle.failed(client, user)
            raise
        self.throttle.succeeded(client, principal.username)
        return principal
