"""Notification endpoints: where an account's events go.

Two sources, as in Anchore:
- anchore-engine's `webhooks` configuration (a YAML file given to `serve --notifications-config`):
  `general: {url}` and `<notification_type>: {url}`, the type's hook tried before `general`; the URL
  may hold `<userId>` and `<notification_type>`; `webhook_user`/`webhook_pass` for basic auth,
  `ssl_verify`; ci-gate adds `signing_secret`. It applies to every account.
- Anchore Enterprise-style endpoint configurations per account, added over the API
  (`/v2/notifications/endpoints/{kind}/configurations`): webhook, slack, teams, jira, github, email.

Secret values (HMAC signing secret, passwords, tokens) are sealed in the account's store with the
server's credential key and never returned by the API or logged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ci_gate.database import filtered
from ci_gate.secrets.urls import masked

NOTIFICATION_TYPES = ("tag_update", "policy_eval", "vuln_update", "analysis_update")
KINDS = ("webhook", "slack", "teams", "jira", "github", "email")
SECRET_FIELDS = ("secret", "password", "token", "url")
"""Fields sealed in the store and never returned (a Slack or Teams webhook URL is itself a credential)."""
URL_IS_SECRET = ("slack", "teams")
URL_SETTINGS = ("url", "api_url")
"""Public URL settings: shown masked (ci_gate.secrets.urls); when the URL holds a credential (a
`?token=`, a secret path) the full URL is sealed among the secrets under the same name."""

_FIELDS: dict[str, dict[str, tuple[type, bool]]] = {
    # field -> (type, required)
    "webhook": {"url": (str, True), "format": (str, False), "username": (str, False), "verify_tls": (bool, False)},
    "slack": {},
    "teams": {},
    "jira": {"url": (str, True), "username": (str, True), "project_key": (str, True), "issue_type": (str, False),
             "labels": (list, False), "verify_tls": (bool, False)},
    "github": {"owner": (str, True), "repository": (str, True), "api_url": (str, False), "labels": (list, False)},
    "email": {"smtp_host": (str, True), "smtp_port": (int, False), "from": (str, True), "to": (list, True),
              "username": (str, False), "starttls": (bool, False)},
}
_COMMON = {"name": (str, False), "enabled": (bool, False), "notification_types": (list, False)}


class EndpointError(ValueError):
    """An endpoint configuration that cannot be used: the message says which field and why."""


class CredentialSealer(Protocol):
    """What seals secrets in a store (ci_gate.server.records.CredentialBox)."""

    def seal(self, store: Any, password: str) -> bytes: ...

    def open(self, store: Any, token: bytes) -> str | None: ...


@dataclass(frozen=True)
class Endpoint:
    """One place notifications go."""

    endpoint_id: str
    """A UUID (API configurations) or `webhooks.<type|general>` (the engine-style file)."""
    kind: str
    """webhook, slack, teams, jira, github or email."""
    name: str
    """A name people recognise it by."""
    settings: Mapping[str, Any]
    """The kind's public fields (URL, project, recipients...)."""
    notification_types: tuple[str, ...] = NOTIFICATION_TYPES
    """Which notification types it receives."""
    enabled: bool = True
    """Disabled endpoints receive nothing."""
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """secret (HMAC signing), password, token, and the full form of a URL setting that holds a
    credential: never shown."""

    def public(self) -> dict[str, Any]:
        """The API shape: settings with their URLs masked, never a secret (only whether one is set)."""
        # masked from the URL requests go to, as the masked URL a client saves back is compared with
        settings = {name: masked(self.address(name)) if name in URL_SETTINGS and isinstance(value, str) else value
                    for name, value in self.settings.items()}
        return {"id": self.endpoint_id, "endpoint": self.kind, "name": self.name, "enabled": self.enabled,
                "notification_types": list(self.notification_types), **settings,
                **{f"{name}_set": name in self.secrets for name in _allowed_secrets(self.kind)}}

    def address(self, name: str, default: str = "") -> str:
        """The URL setting `name` as requests go to it: with its credentials."""
        return self.secrets.get(name) or str(self.settings.get(name) or default)


def _allowed_secrets(kind: str) -> tuple[str, ...]:
    return {"webhook": ("secret", "password"), "slack": ("secret", "url"), "teams": ("secret", "url"),
            "jira": ("secret", "password"), "github": ("secret", "token"), "email": ("password",)}[kind]


def _check_url(value: str, where: str) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise EndpointError(f"{where} is not a valid URL (check the brackets of an IPv6 host and the port)") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EndpointError(f"{where} must be an http(s) URL (http://HOST/PATH or https://HOST/PATH)")
    if "@" in parts.netloc:  # the URL is shown by the API: credentials go where they are kept sealed
        raise EndpointError(f"{where} must not hold credentials (USER:PASSWORD@); give username and password")


def _seal_url_credentials(name: str, settings: dict[str, Any], secrets: dict[str, str],
                          previous: Endpoint | None) -> None:
    """Check the URL setting `name`; keep it masked in `settings` and, when it holds a credential, whole in
    `secrets`. The masked URL sent back unchanged (a client that read the endpoint and saves it again)
    means the URL the endpoint had."""
    given = settings[name]
    if previous is not None and previous.address(name) and given == masked(previous.address(name)):
        given = previous.address(name)
    _check_url(given, name)
    settings[name] = masked(given)
    if settings[name] != given:
        secrets[name] = given
    else:
        secrets.pop(name, None)


def parse_endpoint(kind: str, body: Any, endpoint_id: str | None = None,
                   previous: Endpoint | None = None) -> Endpoint:
    """An endpoint from an API body; `previous` keeps secrets an update does not send again."""
    if kind not in KINDS:
        raise EndpointError(f"unknown endpoint {kind!r}; use one of {', '.join(KINDS)}")
    if not isinstance(body, dict):
        raise EndpointError("the body must be a JSON object")
    allowed = {**_FIELDS[kind], **_COMMON}
    secret_names = _allowed_secrets(kind)
    unknown = sorted(set(body) - set(allowed) - set(secret_names) - {"id", "endpoint"}
                     - {f"{name}_set" for name in SECRET_FIELDS})
    if unknown:
        raise EndpointError(f"unknown field {unknown[0]!r} for a {kind} endpoint; fields: "
                            f"{', '.join(sorted([*allowed, *secret_names]))}")
    settings: dict[str, Any] = {}
    field_types: dict[str, tuple[type, bool]] = _FIELDS[kind]
    for name, (expected, required) in field_types.items():
        value = body.get(name)
        if value is None:
            if required:
                raise EndpointError(f"a {kind} endpoint needs {name!r}")
            continue
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise EndpointError(f"{name!r} must be a {expected.__name__}")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise EndpointError(f"{name!r} must be a list of strings")
        settings[name] = value
    secrets = dict(previous.secrets) if previous is not None else {}
    for name in URL_SETTINGS:
        if name in settings:
            _seal_url_credentials(name, settings, secrets, previous)
        elif kind not in URL_IS_SECRET:
            secrets.pop(name, None)
    if settings.get("format", "v1") not in ("v1", "v2"):
        raise EndpointError("format must be v1 (anchore-engine's body) or v2 (Anchore Enterprise's event body)")
    if kind == "email" and not settings["to"]:
        raise EndpointError("an email endpoint needs at least one address in 'to'")
    types = body.get("notification_types") or list(NOTIFICATION_TYPES)
    if not isinstance(types, list) or not set(types) <= set(NOTIFICATION_TYPES):
        raise EndpointError(f"notification_types must list some of {', '.join(NOTIFICATION_TYPES)}")
    for name in secret_names:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise EndpointError(f"{name!r} must be a non-empty string")
            if name == "url":
                _check_url(value, "url")
            secrets[name] = value
    if kind in URL_IS_SECRET and "url" not in secrets:
        raise EndpointError(f"a {kind} endpoint needs 'url' (the incoming webhook URL)")
    if kind == "github" and "token" not in secrets:
        raise EndpointError("a github endpoint needs 'token' (a token that may create issues in the repository)")
    if kind == "jira" and "password" not in secrets:
        raise EndpointError("a jira endpoint needs 'password' (the user's API token)")
    name = body.get("name") or (previous.name if previous else f"{kind} endpoint")
    if not isinstance(name, str):
        raise EndpointError("name must be a string")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise EndpointError("enabled must be true or false")
    return Endpoint(endpoint_id=endpoint_id or str(uuid.uuid4()), kind=kind, name=name[:200], settings=settings,
                    notification_types=tuple(types), enabled=enabled, secrets=secrets)


# --- in the account's store -----------------------------------------------------------------------


def save_endpoint(store: Any, box: CredentialSealer, endpoint: Endpoint, now: str) -> None:
    sealed = box.seal(store, json.dumps(dict(endpoint.secrets))) if endpoint.secrets else None
    settings = {"settings": dict(endpoint.settings), "notification_types": list(endpoint.notification_types)}
    with store._transaction() as connection:
        row = connection.execute("SELECT created_at FROM notification_endpoints WHERE endpoint_id = ?",
                                 (endpoint.endpoint_id,)).fetchone()
        connection.execute(
            "INSERT INTO notification_endpoints (endpoint_id, kind, name, enabled, settings, sealed, created_at, "
            "last_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint_id) DO UPDATE SET "
            "kind = excluded.kind, name = excluded.name, enabled = excluded.enabled, settings = excluded.settings, "
            "sealed = excluded.sealed, last_updated = excluded.last_updated",
            (endpoint.endpoint_id, endpoint.kind, endpoint.name, int(endpoint.enabled), json.dumps(settings), sealed,
             row["created_at"] if row is not None else now, now))


def list_endpoints(store: Any, box: CredentialSealer | None, kind: str | None = None,
                   endpoint_id: str | None = None) -> list[Endpoint]:
    sql, parameters = filtered("SELECT * FROM notification_endpoints WHERE 1 = 1", [],
                               (("kind", kind), ("endpoint_id", endpoint_id)))
    endpoints = []
    for row in store._query(sql + " ORDER BY created_at, endpoint_id", parameters):
        stored = json.loads(row["settings"])
        secrets: dict[str, str] = {}
        if row["sealed"] is not None:
            opened = box.open(store, row["sealed"]) if box is not None else None
            # None: the admin password changed since; the endpoint is listed, and its sends fail visibly
            secrets = json.loads(opened) if opened else {name: "" for name in _allowed_secrets(row["kind"])}
        endpoints.append(Endpoint(endpoint_id=row["endpoint_id"], kind=row["kind"], name=row["name"],
                                  settings=stored["settings"], notification_types=tuple(stored["notification_types"]),
                                  enabled=bool(row["enabled"]), secrets=secrets))
    return endpoints


def delete_endpoint(store: Any, kind: str, endpoint_id: str) -> bool:
    with store._transaction() as connection:
        return bool(connection.execute("DELETE FROM notification_endpoints WHERE endpoint_id = ? AND kind = ?",
                                       (endpoint_id, kind)).rowcount)


# --- anchore-engine's `webhooks` configuration -----------------------------------------------------


def load_webhooks_config(path: Path) -> list[Endpoint]:
    """The engine-style endpoints of a YAML file holding a `webhooks:` mapping (or being one)."""
    import yaml

    from ci_gate.errors import UsageError

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UsageError(f"cannot read --notifications-config {path}: {error}") from None
    if isinstance(document, dict) and isinstance(document.get("webhooks"), dict):
        document = document["webhooks"]
    if not isinstance(document, dict):
        raise UsageError(f"--notifications-config {path} must hold a `webhooks:` mapping (anchore-engine's "
                         "config: general: {url: ...}, <notification_type>: {url: ...})")
    try:
        return webhooks_endpoints(document)
    except EndpointError as error:
        raise UsageError(f"--notifications-config {path}: {error}") from None


def webhooks_endpoints(config: Mapping[str, Any]) -> list[Endpoint]:
    endpoints = []
    user, password = config.get("webhook_user"), config.get("webhook_pass")
    verify = config.get("ssl_verify", True)
    for hook in ("general", *NOTIFICATION_TYPES):
        entry = config.get(hook)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise EndpointError(f"webhooks.{hook} needs a url")
        url = entry["url"]
        _check_url(url.replace("<userId>", "u").replace("<notification_type>", "t"), f"webhooks.{hook}.url")
        if entry.get("format", "v1") not in ("v1", "v2"):
            raise EndpointError(f"webhooks.{hook}.format must be v1 (anchore-engine's body) or v2 (Anchore "
                                "Enterprise's event body)")
        settings: dict[str, Any] = {"url": url, "format": entry.get("format", "v1"), "verify_tls": bool(verify)}
        hook_user = entry.get("webhook_user", user)
        if hook_user:
            settings["username"] = str(hook_user)
        secrets = {"url": url} if masked(url) != url else {}
        settings["url"] = masked(url)
        hook_password = entry.get("webhook_pass", password)
        if hook_password:
            secrets["password"] = str(hook_password)
        signing = entry.get("signing_secret", config.get("signing_secret"))
        if signing:
            secrets["secret"] = str(signing)
        # the engine tries the type's own hook, then general: general covers the types without one
        types = (hook,) if hook != "general" else tuple(t for t in NOTIFICATION_TYPES if t not in config)
        endpoints.append(Endpoint(endpoint_id=f"webhooks.{hook}", kind="webhook", name=f"webhooks.{hook}",
                                  settings=settings, notification_types=types, secrets=secrets))
    return endpoints
