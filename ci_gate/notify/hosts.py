"""Which hosts `ci-gate serve` may send notifications to (`serve --allow-notify-host`).

Any account user can configure an endpoint over the API, so an unchecked endpoint URL would let
them make the server connect anywhere it can reach (a cloud metadata address, an internal
service): a server-side request forgery. Like registries (`--allow-registry`), the operator names
the hosts; the hosts of the operator's own `--notifications-config` file are trusted too. The
check is made when an endpoint is saved and again before every connection (the list may have
shrunk since), on the URL actually requested, so a redirect is never followed (senders.py) and a
Jira or GitHub request goes only to the host configured.

An entry is HOST (any port), HOST:PORT, an address block (`10.0.0.0/8`) or `*` (any host). The name
is matched as written: a name that resolves to an allowed address is not itself allowed. And the
address is checked too, at send time: the name is resolved once, and an address that is not public
(loopback, private, link-local such as the cloud metadata service at 169.254.169.254, shared,
reserved) is refused unless an entry names that address or a block holding it, so neither `*` nor
an allowed name that resolves, or is re-pointed (DNS rebinding), to an internal address reaches it.
The sender then connects to the very address checked (senders.py), never resolving the name again.
"""

from __future__ import annotations

import ipaddress
import re
import socket
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
    if text.count(":") > 1 and not text.startswith("[") and "/" not in text:  # a bare IPv6 address: `[::1]`
        try:
            return join(str(ipaddress.IPv6Address(text)), None)
        except ValueError:
            raise ValueError(f"{FLAG} takes HOST[:PORT] ([v6]:PORT), an address or '*', not {text!r}") from None
    if "/" in text and "://" not in text and "@" not in text:
        try:
            return str(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"{FLAG} takes HOST[:PORT], an address block or '*', not {text!r}") from None
    if not text or "/" in text or "@" in text or "://" in text:
        raise ValueError(f"{FLAG} takes HOST[:PORT] or '*', not {text!r}")
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{FLAG} takes HOST[:PORT] or '*', not {text!r}") from None
    host = (host or "").rstrip(".")
    if not _PLAIN_HOST.fullmatch(join(host, None)):
        raise ValueError(f"{FLAG} takes HOST[:PORT] or '*', not {text!r}")
    return join(host, port)


def join(host: str, port: int | None) -> str:
    """`host:port` (`[v6]:port`), or the host alone when port is None."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def url_place(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, the port made explicit (80/443 by default). Parsed by urllib3,
    as requests parses it to connect, so a URL two parsers read differently is judged by where the
    connection would really go; an unreadable one gives a host no entry but `*` matches."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parts = parse_url(url)
    except LocationParseError:
        return "(unreadable URL)", 0
    host = (parts.host or "").lower().strip("[]").rstrip(".")
    return host, parts.port or _DEFAULT_PORTS.get((parts.scheme or "").lower(), 0)


def url_host(url: str) -> str:
    """`host:port` of an http(s) URL (url_place)."""
    return join(*url_place(url))


def smtp_place(endpoint: Endpoint) -> tuple[str, int]:
    return (str(endpoint.settings["smtp_host"]).strip().lower().strip("[]").rstrip("."),
            int(endpoint.settings.get("smtp_port") or SMTP_PORT))


def smtp_host(endpoint: Endpoint) -> str:
    return join(*smtp_place(endpoint))


def endpoint_hosts(endpoint: Endpoint) -> list[str]:
    """The `host:port` places an endpoint connects to."""
    if endpoint.kind == "email":
        return [smtp_host(endpoint)]
    if endpoint.kind in ("slack", "teams"):
        url = endpoint.secrets.get("url", "")
    elif endpoint.kind == "github":
        url = endpoint.address("api_url", GITHUB_API)
    else:  # webhook, jira; a placeholder of the engine's URL is filled in with something harmless
        url = endpoint.address("url").replace("<userId>", "u").replace("<notification_type>", "t")
    return [url_host(url)] if url else []


def allowed(host_port: str, allowlist: Iterable[str]) -> bool:
    """Whether `host:port` is `*`, the same HOST:PORT, or HOST (any port) on the list. A name with
    characters no host name has (`\\`, `%`, `@`...) matches only `*`."""
    name = host_port.rsplit(":", 1)[0]
    plain = _PLAIN_HOST.fullmatch(name) is not None
    literal = _address(name.strip("[]"))
    return any(entry == ALLOW_ANY or (plain and entry in (host_port, name))
               or (literal is not None and _in_block(literal, entry)) for entry in allowlist)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `text` spells (an IPv4-mapped IPv6 address as the IPv4 one it is), else None."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _in_block(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    return "/" in entry and address in ipaddress.ip_network(entry)


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Reachable on the internet: not loopback, private, link-local (cloud metadata), shared, multicast or reserved."""
    return address.is_global and not address.is_multicast


def address_allowed(address_text: str, port: int, allowlist: Iterable[str]) -> bool:
    """Whether a connection to this resolved address may be made: a public one always (the name was
    checked already), any other only when an entry names the address (with this port or none) or a block
    holding it: `*` and host names never let a connection reach an internal address."""
    address = _address(address_text)
    if address is None:
        return False
    if public(address):
        return True
    for entry in allowlist:
        if _in_block(address, entry):
            return True
        if entry == ALLOW_ANY or "/" in entry:
            continue
        parts = urlsplit(f"//{entry}")
        if _address(parts.hostname or "") == address and parts.port in (None, port):
            return True
    return False


def address_refusal(host_port: str, address: str) -> str:
    return (f"notification host {host_port} resolves to {address}, an internal address this server may not "
            f"notify unless an administrator allows that address: ci-gate serve {FLAG} {join(address, None)}")


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now, in the resolver's order (the system resolver; tests point a
    name they control at a local receiver by replacing this function)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def pin(host: str, port: int, allowlist: Iterable[str]) -> str:
    """The address to connect to for `host:port`: resolved once, here; the first the allowlist lets a
    connection reach. HostNotAllowed (naming the address) when none is; OSError when it does not resolve."""
    allowlist = tuple(allowlist)
    literal = _address(host)
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    for address in addresses:
        if address_allowed(address, port, allowlist):
            return address
    if not addresses:
        raise OSError(f"{host} has no address")
    raise HostNotAllowed(address_refusal(join(host, port), addresses[0]))


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
        host, _, port = host_port.rpartition(":")
        address = _address(host.strip("[]"))  # a name is resolved at send time, an address is judged now
        if address is not None and not address_allowed(str(address), int(port or 0), allowlist):
            raise HostNotAllowed(address_refusal(host_port, str(address)))


def trusted_hosts(configured: Iterable[Endpoint]) -> list[str]:
    """The `host:port` of the operator's own `--notifications-config` endpoints."""
    return [host for endpoint in configured for host in endpoint_hosts(endpoint)]
