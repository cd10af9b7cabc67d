"""The Anchore HTTP API, v2 (Enterprise >= 4.9) and v1 (anchore-engine), behind one small client.

The contract is Anchore Enterprise's v2 API (its OpenAPI spec, anchore/enterprise-client-go
pkg/anchore-api-swagger-main.yaml) and anchore-engine's v1 API (anchore_engine/services/apiext/
swagger/swagger.yaml). The client speaks whichever version the server has and hands back v2-shaped
dictionaries (`image_digest`, `analysis_status`, `image_detail[].full_tag`), so the rest of the
backend never branches on the version: v1's one-element arrays become objects and its camelCase keys
are renamed. Check responses keep their own shape; they differ too much (v1's table, v2's findings)
and `anchore_mapping` reads both.

Every request goes through `ci_gate.http.send` (timeouts, retries of 429/5xx honouring
Retry-After, TLS verification). Any failure becomes one `BackendError` line built from the
server's error body (either `{code, message}` or v1's `{httpcode, message}`) with the
password scrubbed from it, plus a hint on what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from ci_gate.errors import BackendError
from ci_gate.http import HttpError, RetryPolicy, new_session, redact_url, send

__all__ = ["V1_KEYS", "AnchoreApi", "ApiFailure", "Connection", "error_message", "normalise_v1"]

API_KEY_USER = "_api_key"
"""The user name that makes the password an Enterprise API key."""

V1_KEYS = {
    "imageDigest": "image_digest", "parentDigest": "parent_digest", "userId": "account_name",
    "fulltag": "full_tag", "fulldigest": "full_digest", "imageId": "image_id", "policyId": "policy_id",
    "pullstring": "pull_string",
}
"""v1 → v2 key renames (as the Jenkins plugin's Util.GET_VERSION_KEY)."""

NOT_ANALYZED_PREFIX = "image is not analyzed"
"""v1's 404 message while an image is not analysed yet."""


@dataclass(frozen=True)
class Connection:
    """A resolved connection: where the API is and who we are."""

    base_url: str
    """Scheme, host, port and any path before the version (no trailing slash)."""
    username: str
    """The user, or `_api_key`."""
    password: str = field(repr=False)
    """Password or API key; never printed."""
    account: str | None = None
    """`x-anchore-account` value, when acting in another account."""
    ca_bundle: str | None = None
    """A CA bundle for the server's TLS certificate; None = the system's."""
    api_version: str | None = None
    """`v2` or `v1` when the URL says so; None = detect."""
    request_timeout: float = 30.0
    """Seconds for connecting and for each read of one request."""
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=5, backoff_initial=0.5,
                                                                   backoff_max=8.0, retry_after_max=60.0))
    """Retries of one request (429/5xx/connection errors)."""


def split_url(url: str) -> tuple[str, str | None]:
    """(base URL, `v1`/`v2` or None) from what the user gave: with or without the version suffix."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendError(f"the Anchore URL {redact_url(url)!r} is not an http(s) URL; "
                           "set --anchore-url or ANCHORE_URL to e.g. https://anchore.example.com")
    path = parts.path.rstrip("/")
    version = None
    for candidate in ("v1", "v2"):
        if path.endswith("/" + candidate):
            version, path = candidate, path[: -len(candidate) - 1]
    netloc = parts.netloc.rsplit("@", 1)[-1]  # user info in the URL is never used (nor echoed)
    return urlunsplit((parts.scheme, netloc, path, "", "")), version


class ApiFailure(BackendError):
    """An HTTP error answer from the server: a one-line message plus the status and server's text."""

    def __init__(self, message: str, status: int, server_message: str):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


def error_message(response: requests.Response) -> str:
    """The server's message from either error shape (`code` or `httpcode`), else a short body."""
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip().replace("\n", " ")
        return text[:200] or (response.reason or "")
    if isinstance(body, Mapping):
        message = body.get("message")
        detail = body.get("detail")
        if isinstance(message, str) and message:
            if isinstance(detail, Mapping) and detail.get("permission_required"):
                message += f" (permission required: {detail['permission_required']})"
            return message
        if isinstance(detail, str):
            return detail
    return json.dumps(body)[:200]


def normalise_v1(value: Any) -> Any:
    """A v1 document with v2's key names (recursively); values are kept."""
    if isinstance(value, Mapping):
        return {V1_KEYS.get(str(key), str(key)): normalise_v1(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise_v1(item) for item in value]
    return value


def _one(value: Any, what: str) -> dict[str, Any]:
    """v1 returns one-element arrays where v2 returns the object."""
    if isinstance(value, list):
        if not value:
            raise BackendError(f"the Anchore server returned no {what}")
        value = value[0]
    if not isinstance(value, dict):
        raise BackendError(f"the Anchore server returned a malformed {what} (not a JSON object)")
    return value


class AnchoreApi:
    """The endpoints the gate needs, in both API versions."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.session = new_session(connection.ca_bundle)
        self.session.auth = requests.auth.HTTPBasicAuth(connection.username, connection.password)
        if connection.account:
            self.session.headers["x-anchore-account"] = connection.account
        self.version = connection.api_version

    # --- plumbing --------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        password = self.connection.password
        return text.replace(password, "***") if password and len(password) >= 3 else text

    def _raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.connection.base_url + path
        try:
            return send(self.session, method, url, timeout=self.connection.request_timeout,
                        retry=self.connection.retry, **kwargs)
        except HttpError as error:
            hint = {"tls": "check the certificate, or pass --ca-bundle with the server's CA",
                    "connection": "check --anchore-url / ANCHORE_URL and that the server is up",
                    "timeout": "the server is slow or unreachable; check it, or try again",
                    "invalid": "check --anchore-url / ANCHORE_URL"}.get(error.kind, "")
            raise BackendError(f"Anchore API unreachable: {error}" + (f"; {hint}" if hint else "")) from None

    def failure(self, response: requests.Response, what: str) -> ApiFailure:
        """An `ApiFailure` for a bad answer, with a hint for the usual causes."""
        status = response.status_code
        server = self._scrub(error_message(response)).strip()
        hint = ""
        user = self.connection.username
        if status == 401:
            hint = ("the API key was rejected (expired or revoked?); set a valid key in ANCHORE_PASS"
                    if user == API_KEY_USER else
                    f"the server rejected the credentials of user {user!r}; check ANCHORE_USER / ANCHORE_PASS")
        elif status == 403:
            hint = (f"user {user!r} may not act in account {self.connection.account!r} (x-anchore-account); "
                    "check --anchore-account, or leave it out to use the user's own account"
                    if self.connection.account else f"user {user!r} lacks the permission for this")
        message = f"Anchore {what} failed: HTTP {status}" + (f": {server}" if server else "")
        if hint:
            message += f"; {hint}"
        return ApiFailure(message, status, server)

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise BackendError(f"Anchore {what}: the server's answer is not JSON (HTTP {response.status_code}); "
                               "is --anchore-url the Anchore API?") from None

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = self._raw(method, f"/{self.api_version()}{path}", **kwargs)
        if response.status_code != 200:
            raise self.failure(response, what)
        return self._json(response, what)

    # --- version detection -----------------------------------------------------------------------

    def api_version(self) -> str:
        """`v2` or `v1`: from the URL, else probed once: `GET /v2/version` (Enterprise's v2 `/version`),
        then v1's ping `GET /v1/` which answers `"v1"`."""
        if self.version:
            return self.version
        probe = self._raw("GET", "/v2/version")
        if probe.status_code in (401, 403):
            raise self.failure(probe, "login")
        if probe.status_code == 200:
            self.version = "v2"
            return self.version
        ping = self._raw("GET", "/v1/")
        if ping.status_code in (401, 403):
            raise self.failure(ping, "login")
        if ping.status_code == 200 and "v1" in ping.text:
            self.version = "v1"
            return self.version
        raise BackendError(
            f"no Anchore API found at {redact_url(self.connection.base_url)} (GET /v2/version: HTTP "
            f"{probe.status_code}, GET /v1/: HTTP {ping.status_code}); check --anchore-url / ANCHORE_URL")

    # --- images ----------------------------------------------------------------------------------

    def add_image(self, pull_string: str, tag: str | None, digest: str | None, dockerfile_base64: str | None,
                  annotations: Mapping[str, str], force: bool) -> dict[str, Any]:
        """POST /images: by digest (with its tag) when the digest is known, else by tag."""
        version = self.api_version()
        pull_key = "pull_string" if version == "v2" else "pullstring"
        if digest is not None and tag is not None:
            repository = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
            source: dict[str, Any] = {"digest": {pull_key: f"{repository}@{digest}", "tag": tag}}
            kind = "digest"
        else:
            source = {"tag": {pull_key: pull_string}}
            kind = "tag"
        if dockerfile_base64:
            source[kind]["dockerfile"] = dockerfile_base64
        body: dict[str, Any] = {"source": source}
        if annotations:
            body["annotations"] = dict(annotations)
        subscribe = "auto_subscribe" if version == "v2" else "autosubscribe"
        params = {"force": "true" if force else "false", subscribe: "false"}
        answer = self._call("POST", "/images", "image add", params=params, json=body)
        return self.image_record(answer)

    def image_record(self, answer: Any) -> dict[str, Any]:
        record = _one(answer, "image record")
        return normalise_v1(record) if self.version == "v1" else record

    def get_image(self, digest: str) -> dict[str, Any]:
        """GET /images/{digest}."""
        return self.image_record(self._call("GET", f"/images/{quote(digest, safe=':')}", "image status"))

    def get_image_response(self, digest: str) -> requests.Response:
        """The raw answer of GET /images/{digest}, for the poll loop to judge."""
        return self._raw("GET", f"/{self.api_version()}/images/{quote(digest, safe=':')}")

    def images_by_tag(self, full_tag: str) -> list[dict[str, Any]]:
        """GET /images?full_tag= (v2 `{"items": [...]}`, v1 an array)."""
        if self.api_version() == "v2":
            answer = self._call("GET", "/images", "image lookup", params={"full_tag": full_tag})
            items = answer.get("items", []) if isinstance(answer, dict) else answer
        else:
            answer = self._call("GET", "/images", "image lookup", params={"fulltag": full_tag, "history": "false"})
            items = normalise_v1(answer)
        return [item for item in items or [] if isinstance(item, dict)]

    # --- results ---------------------------------------------------------------------------------

    def check_response(self, digest: str, tag: str, policy_id: str | None) -> requests.Response:
        """GET /images/{digest}/check, raw: the caller tells "not analysed yet" from failures."""
        if self.api_version() == "v2":
            params = {"tag": tag, "detail": "true", "history": "false"}
            if policy_id:
                params["policy_id"] = policy_id
        else:
            params = {"tag": tag, "detail": "true", "history": "false"}
            if policy_id:
                params["policyId"] = policy_id
        return self._raw("GET", f"/{self.api_version()}/images/{quote(digest, safe=':')}/check", params=params)

    def vulnerabilities(self, digest: str) -> list[dict[str, Any]]:
        """GET /images/{digest}/vuln/all; items keep their shape (v1 and v2 share the keys used)."""
        params = {"vendor_only": "true"}
        answer = self._call("GET", f"/images/{quote(digest, safe=':')}/vuln/all", "vulnerability listing",
                            params=params)
        items = answer.get("vulnerabilities", []) if isinstance(answer, dict) else []
        return [item for item in items if isinstance(item, dict)]

    def content_types(self, digest: str) -> list[str]:
        """GET /images/{digest}/content: the content types the server has."""
        answer = self._call("GET", f"/images/{quote(digest, safe=':')}/content", "content type listing")
        return [str(item) for item in answer] if isinstance(answer, list) else []

    def content(self, digest: str, content_type: str) -> list[dict[str, Any]]:
        """GET /images/{digest}/content/{type} → the `content` items."""
        answer = self._call("GET", f"/images/{quote(digest, safe=':')}/content/{quote(content_type)}",
                            f"{content_type} content listing")
        items = answer.get("content", []) if isinstance(answer, dict) else []
        return [item for item in items if isinstance(item, dict)]
