"""`/v2/user/api-keys` and `/v2/accounts` (Anchore Enterprise's API keys and accounts)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.routing import Route

from ci_gate.server import keys, shapes
from ci_gate.server.accounts import AccountError
from ci_gate.server.auth import ADMIN_USER, Principal
from ci_gate.server.routing import Call
from ci_gate.server.service import ApiError, Service
from ci_gate.server.store import ACCOUNT, ApiKeyRow

_Changed = TypeVar("_Changed")


def require_password(principal: Principal | None) -> None:
    """API keys are managed by the user with the password; a key may not mint, change or delete keys."""
    if principal is not None and principal.api_key is not None:
        raise ApiError(403, "Access Denied: API keys cannot create, change or delete API keys; authenticate "
                            "with the user's password", {"permission_required": "createApiKey"})


def add_api_key(service: Service, body: Any, principal: Principal) -> dict[str, Any]:
    """A new key for the caller's account; its value is shown once, in this answer."""
    require_password(principal)
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a UserApiKey object: {\"name\": \"ci\", "
                            "\"expires_at\": \"2027-01-01T00:00:00Z\"}")
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > 1024:
        raise ApiError(400, "description must be a string of at most 1024 characters")
    try:
        name = keys.key_name(body.get("name"))
        expires_at = keys.expiry(body.get("expires_at"), datetime.now(timezone.utc))
    except keys.KeyRequestError as error:
        raise ApiError(400, str(error)) from None
    value = secrets.token_urlsafe(32)
    row = service.store.add_api_key(name, description, value, expires_at, principal.account)
    if row is None:
        raise ApiError(409, f"an API key named {name!r} already exists")
    return shapes.api_key(row, value)


def _account(call: Call) -> str:
    return call.principal.account if call.principal is not None else ACCOUNT


def _list_api_keys(call: Call) -> Any:
    return [shapes.api_key(row) for row in call.service.store.list_api_keys(_account(call))]


def _post_api_key(call: Call) -> Any:
    assert call.principal is not None
    return add_api_key(call.service, call.json(), call.principal)


def _found_key(row: ApiKeyRow | None) -> Any:
    if row is None:
        raise ApiError(404, "API key not found")
    return shapes.api_key(row)


def _get_api_key(call: Call) -> Any:
    return _found_key(call.service.store.get_api_key(call.path_params["key_name"], _account(call)))


def _patch_api_key(call: Call) -> Any:
    """PATCH {"status": "revoked"}: the key stops working at once and stays listed as revoked."""
    require_password(call.principal)
    body = call.json()
    if not isinstance(body, dict) or body.get("status") != "revoked" or set(body) - {"status"}:
        raise ApiError(400, "a key can only be revoked: send {\"status\": \"revoked\"}")
    return _found_key(call.service.store.revoke_api_key(call.path_params["key_name"], _account(call)))


def _delete_api_key(call: Call) -> Any:
    require_password(call.principal)
    if not call.service.store.delete_api_key(call.path_params["key_name"], _account(call)):
        raise ApiError(404, "API key not found")
    return Response(status_code=204)


def _require_admin(call: Call) -> None:
    if call.principal is None or call.principal.username != ADMIN_USER or call.principal.api_key is not None:
        raise ApiError(403, "Access Denied: only the admin user (with its password) manages accounts",
                       {"permission_required": "createAccount"})


def _account_body(name: str, email: str, created_at: str) -> dict[str, Any]:
    """Anchore Enterprise's `Account`."""
    return {"name": name, "email": email, "state": "enabled", "type": "admin" if name == ACCOUNT else "user",
            "created_at": created_at, "last_updated": created_at}


def _list_accounts(call: Call) -> Any:
    _require_admin(call)
    started = call.service.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_account_body(ACCOUNT, "", started)] + [_account_body(a.name, a.email, a.created_at)
                                                     for a in call.service.accounts.accounts()]


def _account_change(call: Call, shape: str, change: Callable[[dict[str, Any]], _Changed]) -> _Changed:
    """An admin's change to the accounts: the request body must be a JSON object (`shape` shows one), and
    what the accounts refuse is answered with its own status."""
    _require_admin(call)
    body = call.json()
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be {shape}")
    try:
        return change(body)
    except AccountError as error:
        raise ApiError(error.status, str(error)) from None


def _post_account(call: Call) -> Any:
    row = _account_change(call, "an Account object: {\"name\": \"team-b\"}",
                          lambda body: call.service.accounts.create_account(body.get("name"), body.get("email") or ""))
    call.service.store_for(row.name)
    return _account_body(row.name, row.email, row.created_at)


def _post_account_user(call: Call) -> Any:
    username = _account_change(
        call, "a user: {\"username\": \"bob\", \"password\": \"...\"}",
        lambda body: call.service.accounts.add_user(call.path_params["account_name"], body.get("username"),
                                                    body.get("password")))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"username": username, "type": "native", "source": None, "created_at": now, "last_updated": now}


def routes(service: Service, route: Any) -> list[Route]:
    return [
        route("/v2/user/api-keys", _list_api_keys, ["GET"], service),
        route("/v2/user/api-keys", _post_api_key, ["POST"], service),
        route("/v2/user/api-keys/{key_name}", _get_api_key, ["GET"], service),
        route("/v2/user/api-keys/{key_name}", _patch_api_key, ["PATCH"], service),
        route("/v2/user/api-keys/{key_name}", _delete_api_key, ["DELETE"], service),
        route("/v2/accounts", _list_accounts, ["GET"], service),
        route("/v2/accounts", _post_account, ["POST"], service),
        route("/v2/accounts/{account_name}/users", _post_account_user, ["POST"], service),
    ]
