"""Sending one delivery to one endpoint, and what the answer means.

Every HTTP delivery carries the delivery's idempotency key (`Idempotency-Key` and
`X-CI-Gate-Idempotency-Key`: the same on every retry of one event to one endpoint), and, when the
endpoint has a signing secret, `X-CI-Gate-Signature-256: sha256=<hex HMAC-SHA256 of the body>`
(GitHub's webhook scheme, so receivers can reuse their verification code).

Only the hosts the operator allowed are contacted (ci_gate.notify.hosts), checked on each URL
requested, by name and by the address the name resolves to at that moment; the connection goes to
that checked address (ci_gate.notify.pinned), and redirects are never followed (a 3xx is a
refusal), so a receiver cannot send the server on to another host.

2xx: delivered. 408, 425, 429, 5xx, a timeout or a refused connection: retried later (honouring
Retry-After). Any other 4xx: the receiver refuses this request for good (a deleted Slack channel,
a Jira field it rejects), so it is not retried. Error texts never hold a URL, a token or a body:
a Slack or Teams URL is itself a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from ci_gate import __version__
from ci_gate.notify import formats, hosts, pinned
from ci_gate.notify.endpoints import Endpoint

TIMEOUT_VARIABLE = "CI_GATE_NOTIFY_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT = 10.0
SIGNATURE_HEADER = "X-CI-Gate-Signature-256"
IDEMPOTENCY_HEADER = "X-CI-Gate-Idempotency-Key"
RETRYABLE_STATUSES = frozenset({408, 425, 429})


class RetryLater(Exception):
    """The receiver could not take it now; try again (not before `retry_after` seconds when given)."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


class Refused(Exception):
    """The receiver refuses this delivery for good."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Delivery:
    """One event going to one endpoint."""

    idempotency_key: str
    """Sent as Idempotency-Key: the same on every try."""
    event: Mapping[str, Any]
    """The outbox's copy of the event."""
    account: str
    """The account the event belongs to (`userId` in anchore-engine's body)."""
    tries: int
    """This attempt's number (1 = first)."""
    max_tries: int
    """When retries end (epoch seconds), as anchore-engine's body carries it."""
    allowed_hosts: tuple[str, ...] | None = ()
    """The hosts it may connect to (`serve --allow-notify-host`, ci_gate.notify.hosts); None = unchecked
    (an endpoint of the operator's own `--notifications-config`)."""


@dataclass(frozen=True)
class Sent:
    """A delivery the receiver accepted."""

    status: int | None
    """Its HTTP status (250 for email)."""
    external_ref: str = ""
    """The issue key or number a Jira or GitHub delivery created or updated."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def timeout() -> float:
    return float(os.environ.get(TIMEOUT_VARIABLE) or DEFAULT_TIMEOUT)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _request(method: str, url: str, endpoint: Endpoint, delivery: Delivery, payload: Any = None,
             headers: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None,
             params: Mapping[str, str] | None = None) -> requests.Response:
    address = _checked_address(*hosts.url_place(url), delivery)
    body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
    sent_headers = {"User-Agent": f"ci-gate/{__version__}", "Idempotency-Key": delivery.idempotency_key,
                    IDEMPOTENCY_HEADER: delivery.idempotency_key,
                    "X-CI-Gate-Event": str(delivery.event["notification_type"]), **dict(headers or {})}
    if payload is not None:
        sent_headers["Content-Type"] = "application/json"
    if endpoint.secrets.get("secret"):
        sent_headers[SIGNATURE_HEADER] = sign(endpoint.secrets["secret"], body)
    try:
        with pinned.session(address) as session:  # the body is read before the session closes
            response = session.request(method, url, data=body if payload is not None else None, headers=sent_headers,
                                       auth=auth, params=params, timeout=timeout(), allow_redirects=False,
                                       verify=bool(endpoint.settings.get("verify_tls", True)),
                                       proxies=None if address is None else pinned.NO_PROXIES)
    except requests.Timeout:
        raise RetryLater(f"no answer within {timeout():g} s") from None
    except requests.RequestException as error:
        raise RetryLater(f"cannot reach the receiver ({type(error).__name__})") from None
    if 200 <= response.status_code < 300:
        return response
    status = response.status_code
    if status in RETRYABLE_STATUSES or status >= 500:
        raise RetryLater(f"HTTP {status}", status, retry_after_seconds(response.headers.get("Retry-After")))
    raise Refused(f"HTTP {status}: the receiver refused the request", status)


def _checked_address(host: str, port: int, delivery: Delivery) -> str | None:
    """Before every connection (the allowlist may have shrunk since the endpoint was saved, the name may
    point elsewhere now): the address to connect to, resolved and checked once; None (resolve as usual)
    for the operator's own endpoints. A host or address not allowed is refused for good."""
    if delivery.allowed_hosts is None:
        return None
    host_port = hosts.join(host, port)
    if not hosts.allowed(host_port, delivery.allowed_hosts):
        raise Refused(hosts.refusal(host_port))
    try:
        return hosts.pin(host, port, delivery.allowed_hosts)
    except hosts.HostNotAllowed as refusal:
        raise Refused(str(refusal)) from None
    except (OSError, UnicodeError) as error:
        raise RetryLater(f"cannot resolve the receiver's host ({type(error).__name__})") from None


def send(endpoint: Endpoint, delivery: Delivery) -> Sent:
    """Deliver once; raises RetryLater or Refused."""
    return _SENDERS[endpoint.kind](endpoint, delivery)


def _webhook(endpoint: Endpoint, delivery: Delivery) -> Sent:
    event = delivery.event
    url = endpoint.address("url").replace("<userId>", quote(delivery.account, safe="")).replace(
        "<notification_type>", str(event["notification_type"]))
    if endpoint.settings.get("format", "v1") == "v2":
        payload = formats.webhook_v2(event, delivery.account)
    else:
        payload = formats.webhook_v1(event, delivery.account, "", delivery.tries, delivery.max_tries)
    user = endpoint.settings.get("username")
    auth = (str(user), endpoint.secrets.get("password", "")) if user else None
    response = _request("POST", url, endpoint, delivery, payload, auth=auth)
    return Sent(response.status_code)


def _slack(endpoint: Endpoint, delivery: Delivery) -> Sent:
    response = _request("POST", endpoint.secrets["url"], endpoint, delivery, formats.slack(delivery.event))
    return Sent(response.status_code)


def _teams(endpoint: Endpoint, delivery: Delivery) -> Sent:
    response = _request("POST", endpoint.secrets["url"], endpoint, delivery, formats.teams(delivery.event))
    return Sent(response.status_code)


def _jira(endpoint: Endpoint, delivery: Delivery) -> Sent:
    """Jira REST v2: one issue per image and event type, found again by its label; a repeat comments on it."""
    base = endpoint.address("url").rstrip("/")
    auth = (str(endpoint.settings["username"]), endpoint.secrets.get("password", ""))
    label = f"ci-gate-{formats.issue_key(delivery.event)}"
    found = _request("GET", f"{base}/rest/api/2/search", endpoint, delivery, auth=auth,
                     params={"jql": f'labels = "{label}"', "fields": "key", "maxResults": "1"})
    issues = _json(found).get("issues") or []
    text = formats.text(delivery.event) + f"\n\nci-gate delivery {delivery.idempotency_key}"
    if issues:
        key = str(issues[0].get("key"))
        response = _request("POST", f"{base}/rest/api/2/issue/{quote(key, safe='')}/comment", endpoint, delivery,
                            {"body": text}, auth=auth)
        return Sent(response.status_code, key)
    fields = {"project": {"key": endpoint.settings["project_key"]}, "summary": formats.title(delivery.event)[:250],
              "description": text, "issuetype": {"name": endpoint.settings.get("issue_type") or "Bug"},
              "labels": [label, *endpoint.settings.get("labels", [])]}
    response = _request("POST", f"{base}/rest/api/2/issue", endpoint, delivery, {"fields": fields}, auth=auth)
    return Sent(response.status_code, str(_json(response).get("key", "")))


def _github(endpoint: Endpoint, delivery: Delivery) -> Sent:
    """GitHub REST: one issue per image and event type, found again by its label; a repeat updates and reopens it."""
    api = endpoint.address("api_url", "https://api.github.com").rstrip("/")
    repository = f"{quote(endpoint.settings['owner'], safe='')}/{quote(endpoint.settings['repository'], safe='')}"
    headers = {"Authorization": f"Bearer {endpoint.secrets.get('token', '')}",
               "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    label = f"ci-gate:{formats.issue_key(delivery.event)}"
    found = _request("GET", f"{api}/repos/{repository}/issues", endpoint, delivery, headers=headers,
                     params={"labels": label, "state": "all", "per_page": "1"})
    existing = found.json() if found.content else []
    body = formats.text(delivery.event)
    if isinstance(existing, list) and existing:
        number = existing[0].get("number")
        response = _request("PATCH", f"{api}/repos/{repository}/issues/{int(number)}", endpoint, delivery,
                            {"title": formats.title(delivery.event)[:250], "body": body, "state": "open"},
                            headers=headers)
        return Sent(response.status_code, str(number))
    response = _request("POST", f"{api}/repos/{repository}/issues", endpoint, delivery,
                        {"title": formats.title(delivery.event)[:250], "body": body,
                         "labels": [label, *endpoint.settings.get("labels", [])]}, headers=headers)
    return Sent(response.status_code, str(_json(response).get("number", "")))


def _email(endpoint: Endpoint, delivery: Delivery) -> Sent:
    smtp_host, smtp_port = hosts.smtp_place(endpoint)
    address = _checked_address(smtp_host, smtp_port, delivery)
    message = EmailMessage()
    message["Subject"] = formats.title(delivery.event)[:200]
    message["From"] = endpoint.settings["from"]
    message["To"] = ", ".join(endpoint.settings["to"])
    message["Message-ID"] = f"<{delivery.idempotency_key}@ci-gate>"
    message[IDEMPOTENCY_HEADER] = delivery.idempotency_key
    message.set_content(formats.text(delivery.event) + "\n\n" + json.dumps(dict(delivery.event["details"]),
                                                                           indent=2)[:20000])
    try:
        with pinned.SMTP(address, endpoint.settings["smtp_host"], smtp_port, timeout()) as smtp:
            if endpoint.settings.get("starttls"):
                smtp.starttls()
            if endpoint.settings.get("username"):
                smtp.login(endpoint.settings["username"], endpoint.secrets.get("password", ""))
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused:
        raise Refused("the SMTP server refused every recipient") from None
    except smtplib.SMTPResponseException as error:
        if 400 <= error.smtp_code < 500:
            raise RetryLater(f"SMTP {error.smtp_code}", error.smtp_code) from None
        raise Refused(f"SMTP {error.smtp_code}: the server refused the message", error.smtp_code) from None
    except (OSError, smtplib.SMTPException) as error:
        raise RetryLater(f"cannot reach the SMTP server ({type(error).__name__})") from None
    return Sent(250)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


_SENDERS = {"webhook": _webhook, "slack": _slack, "teams": _teams, "jira": _jira, "github": _github, "email": _email}
