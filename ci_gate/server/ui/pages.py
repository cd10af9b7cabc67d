"""The dashboard's other pages: a tag's drift between two digests, the policies (list, view, diff against
the active one, activate), allowlist items expiring soon, and notification endpoints with their deliveries.

Activation is the dashboard's one action: a POST form carrying a CSRF token bound to the caller (an HMAC,
under a random key drawn once and kept in the account's database, of the account, user and API key name
the request authenticated as), checked before anything else, then handed to the API's own
`PUT /v2/policies/{id}?active=true` handler, so it runs under the same route wrapper (authentication) and
the same store call as the API. Every replica on one database shares the key: a form served by one may be
posted to another.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import hmac
import json
import secrets
import weakref
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.responses import RedirectResponse, Response

from ci_gate.server.ui.render import page

if TYPE_CHECKING:
    from starlette.routing import Route

EXPIRY_WINDOW = timedelta(days=30)
"""Allowlist items expiring within this window are listed."""
_CSRF_KEY_NAME = "dashboard_csrf_key"
_csrf_keys: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
"""Each store's key, read once per process."""


def _csrf_key(store: Any) -> bytes:
    """The key every replica on this database shares (a form served by one is posted to another): drawn
    at random by whichever comes first and kept in the database, never derived from anything public
    (nor from the admin password: a token would then be an offline guessing oracle for it)."""
    key = _csrf_keys.get(store)
    if key is None:
        with store._transaction() as connection:
            connection.execute("INSERT INTO serve_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                               (_CSRF_KEY_NAME, secrets.token_hex(32)))
            row = connection.execute("SELECT value FROM serve_meta WHERE key = ?", (_CSRF_KEY_NAME,)).fetchone()
        key = _csrf_keys[store] = bytes.fromhex(row["value"])
    return key


def csrf_token(call: Any) -> str:
    """The token bound to who the request authenticated as (account, user, API key name)."""
    principal = call.principal
    who = "\0".join((principal.account, principal.username, principal.api_key or "")) if principal else ""
    return hmac.new(_csrf_key(call.service.store), who.encode("utf-8"), hashlib.sha256).hexdigest()


def _api_error(status: int, message: str) -> Exception:
    from ci_gate.server.service import ApiError

    return ApiError(status, message)


def drift(call: Any) -> Response:
    """Packages added, removed and modified between two analysed digests of a tag (default: the two newest)."""
    from ci_gate.policy.gates.tag_drift import package_drift
    from ci_gate.server.service import normalise_tag

    tag = call.query.get("tag", "")
    if not tag:
        raise _api_error(400, "the tag query parameter is required: /ui/drift?tag=HOST/REPO:TAG")
    tag = normalise_tag(tag)
    digests = list(dict.fromkeys(r.digest for r in call.service.store.images_for_tag(tag, history=True)))
    if not digests:
        raise _api_error(404, f"no image has the tag {tag}")
    if len(digests) < 2 and not (call.query.get("from") and call.query.get("to")):
        return page("drift.html.j2", tag=tag, digests=digests, before="", after="", change=None)
    after = call.query.get("to") or digests[0]
    before = call.query.get("from") or digests[digests.index(after) + 1 if after in digests[:-1] else 1]
    for digest in (before, after):
        if digest not in digests:
            raise _api_error(404, f"the tag {tag} never pointed to {digest}")
    _, previous = call.service.analysed(before)
    _, current = call.service.analysed(after)
    return page("drift.html.j2", tag=tag, digests=digests, before=before, after=after,
                change=package_drift(previous, current))


def _pretty(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def policies(call: Any) -> Response:
    rows = call.service.store.list_policies()
    return page("policies.html.j2", rows=rows, token=csrf_token(call), activated=call.query.get("activated", ""))


def policy(call: Any) -> Response:
    """One policy as pretty JSON, and its unified diff against the active policy."""
    store = call.service.store
    row = call.service.policy_row(call.query.get("id") or None)
    active = store.active_policy()
    diff: list[tuple[str, str]] = []
    if active is not None and active.policy_id != row.policy_id:
        for line in difflib.unified_diff(_pretty(dict(active.document)).splitlines(),
                                         _pretty(dict(row.document)).splitlines(),
                                         f"active: {active.policy_id}", f"this: {row.policy_id}", lineterm=""):
            kind = "add" if line.startswith("+") else "del" if line.startswith("-") else \
                "hunk" if line.startswith("@@") else "same"
            diff.append((kind, line))
    return page("policy.html.j2", row=row, active=active, text=_pretty(dict(row.document)), diff=diff,
                token=csrf_token(call))


def activate(call: Any) -> Response:
    """The activation form: the CSRF token first (403 without it or with a wrong one), then the API's handler."""
    from ci_gate.server import routes_policies

    form = {k: v[-1] for k, v in parse_qs(call.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    if not hmac.compare_digest(form.get("csrf_token", "").encode("utf-8"), csrf_token(call).encode("utf-8")):
        raise _api_error(403, "the form's CSRF token is missing or wrong: reload the policies page and try again")
    policy_id = form.get("policy_id", "")
    if not policy_id:
        raise _api_error(400, "the form must name the policy to activate (policy_id)")
    api_call = dataclasses.replace(call, path_params={"policy_id": policy_id}, query={"active": "true"}, body=b"",
                                   content_type="application/json", v1=False)
    routes_policies.update_policy(api_call)
    return RedirectResponse("/ui/policies?activated=" + quote(policy_id, safe=""), status_code=303)


def expiring(call: Any) -> Response:
    """Allowlist items of every stored policy whose expiry is within the next 30 days (or already past)."""
    now = datetime.now(timezone.utc)
    items = []
    for row in call.service.store.list_policies():
        parsed = call.service.parsed_policy(row)
        for allowlist in parsed.allowlists:
            for item in allowlist.items:
                if item.expires_on is None:
                    continue
                expires = item.expires_on if item.expires_on.tzinfo else item.expires_on.replace(tzinfo=timezone.utc)
                if expires <= now + EXPIRY_WINDOW:
                    items.append({"policy": row, "allowlist": allowlist.name or allowlist.id, "item": item,
                                  "expired": expires <= now, "days": (expires - now).days,
                                  "sort": expires})
    items.sort(key=lambda entry: entry["sort"])
    return page("expiring.html.j2", items=items, days=EXPIRY_WINDOW.days)


def notifications(call: Any) -> Response:
    """The notification endpoints (never a secret: their public shape) and the newest deliveries."""
    from ci_gate.notify import outbox

    store = call.service.store
    endpoints = [e.public() for e in call.service.dispatcher.endpoints(store)]
    deliveries = outbox.list_deliveries(store, None, None, 100)
    return page("notifications.html.j2", endpoints=endpoints, deliveries=deliveries)


def routes(service: Any, route: Any) -> list[Route]:
    return [route("/ui/drift", drift, ["GET"], service), route("/ui/policies", policies, ["GET"], service),
            route("/ui/policy", policy, ["GET"], service),
            route("/ui/policies/activate", activate, ["POST"], service),
            route("/ui/expiring", expiring, ["GET"], service),
            route("/ui/notifications", notifications, ["GET"], service)]
