"""Which hosts `ci-gate serve` may send notifications to (`serve --allow-notify-host`).

Any account user can configure an endpoint over the API, so an unchecked endpoint URL would let
them make the server connect anywhere it can reach (a cloud metadata address, an internal
service): a server-side request forgery. Like registries (`--allow-registry`), the operator names
the hosts; the hosts of the operator's own `--notifications-config` file are trusted too. The
check is made when an endpoint is saved and again before every connection (the list may have
shrunk since), on the URL actually requested, so a redirect is never followed (senders.py) and a
Jira or GitHub request goes only to the host configured.

An entry is HOST (any port), HOST:PORT or `*` (any host). Matching is by name, as written: a name
that resolves to an allowed address is not itself allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from ci_gate.notify.endpoints import Endpoint

ALLOW_ANY = "*"
FLAG = "--allow-notify-host"
ENVIRONMENT_VARIABLE = "CI_GATE_ALLOW_NOTIFY_HOSTS"
GITHUB_API = "https://api.github.com"
_DEFAULT_PORTS = {"http": 80, "https": 443}
SMTP_PORT = 25
_PLAIN_HOST = re.compile(r"\[[0-9a-f:.]+\]|[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class HostNotAllowed(ValueError):
    """An endpoint host the operator did not allow: the message names the flag that allows it."""


def parse_entry(text: str) -> str:
    """A normalised allowlist entry (`host`, `host:port`, `[v6]:port` or `*`); ValueError when unreadable."""
    text = text.strip().lower().rstrip("/")
    if text == ALLOW_ANY:
        return text
    if not text or "/" in text or "@" in text or "://" in text:
        raise ValueError(f"{FLAG} takes HOST[:PORT] or '*', not {text!r}")
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{FLAG} takes HOST[:PORT] or '*', not {text!r}") from None
    host = (host or "").rstrip(".")
    if not _PLAIN_HOST.fullmatch(_join(host, None)):
        raise ValueError(f"{FLAG} takes HOST[:PORT] or '*', not {text!r}")
    return _join(host, port)


def _join(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def url_host(url: str) -> str:
    """`host:port` of an http(s) URL, the port made explicit (80/443 by default). Parsed by urllib3,
    as requests parses it to connect, so a URL two parsers read differently is judged by where the
    connection would really go; an unreadable one gives a host no entry but `*` matches."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parts = parse_url(url)
    except LocationParseError:
        return "(unreadable URL)"
    host = (parts.host or "").lower().strip("[]").rstrip(".")
    return _join(host, parts.port or _DEFAULT_PORTS.get((parts.scheme or "").lower(), 0))


def smtp_host(endpoint: Endpoint) -> str:
    return _join(str(endpoint.settings["smtp_host"]).strip().lower().strip("[]").rstrip("."),
                 int(endpoint.settings.get("smtp_port") or SMTP_PORT))


def endpoint_hosts(endpoint: Endpoint) -> list[str]:
    """The `host:port` places an endpoint connects to."""
    if endpoint.kind == "email":
        return [smtp_host(endpoint)]
    if endpoint.kind in ("slack", "teams"):
        url = endpoint.secrets.get("url", "")
    elif endpoint.kind == "github":
        url = str(endpoint.settings.get("api_url") or GITHUB_API)
    else:  # webhook, jira; a placeholder of the engine's URL is filled in with something harmless
        url = str(endpoint.settings.get("url", "")).replace("<userId>", "u").replace("<notification_type>", "t")
    return [url_host(url)] if url else []


def allowed(host_port: str, allowlist: Iterable[str]) -> bool:
    """Whether `host:port` is `*`, the same HOST:PORT, or HOST (any port) on the list. A name with
    characters no host name has (`\\`, `%`, `@`...) matches only `*`."""
    name = host_port.rsplit(":", 1)[0]
    plain = _PLAIN_HOST.fullmatch(name) is not None
    return any(entry == ALLOW_ANY or (plain and entry in (host_port, name)) for entry in allowlist)


def refusal(host_port: str) -> str:
    return (f"notification host {host_port} is not on this server's list of hosts it may notify; an "
            f"administrator can add it with ci-gate serve {FLAG} {host_port}")


def check_host(host_port: str, allowlist: Iterable[str]) -> None:
    if not allowed(host_port, allowlist):
        raise HostNotAllowed(refusal(host_port))


def check_endpoint(endpoint: Endpoint, allowlist: Iterable[str]) -> None:
    """Raise HostNotAllowed unless every host the endpoint connects to is allowed."""
    allowlist = tuple(allowlist)
    for host_port in endpoint_hosts(endpoint):
        check_host(host_port, allowlist)


def trusted_hosts(configured: Iterable[Endpoint]) -> list[str]:
    """The `host:port` of the operator's own `--notifications-config` endpoints."""
    return [host for endpoint in configured for host in endpoint_hosts(endpoint)]
