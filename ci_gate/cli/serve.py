"""`ci-gate serve`: run the Anchore-compatible service (docs/serve.md).

Parsing only; every ci-gate run imports this module, so the server (starlette, uvicorn, the
engine) is imported inside the command.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from ci_gate.errors import UsageError

PASSWORD_VARIABLE = "CI_GATE_ADMIN_PASSWORD"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ci-gate" / "serve"


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (Anchore's default is 8228).")] = 8228,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the SQLite database lives (default $XDG_DATA_HOME/ci-gate/serve)."),
    ] = None,
    vuln_db: Annotated[
        Path | None,
        typer.Option("--vuln-db", help="The vulnerability store (default: $CI_GATE_VULN_DB, else "
                     "$XDG_DATA_HOME/ci-gate/vulns.sqlite)."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Analysis threads (0: only queue).")] = 2,
    insecure_registry: Annotated[
        list[str] | None,
        typer.Option("--insecure-registry", help="HOST[:PORT] that may be reached over plain HTTP (repeatable; "
                     "loopback registries always may)."),
    ] = None,
    ca_bundle: Annotated[Path | None, typer.Option("--ca-bundle", help="CA bundle for registry TLS.")] = None,
    allow_registry: Annotated[
        list[str] | None,
        typer.Option("--allow-registry", envvar="CI_GATE_ALLOW_REGISTRIES",
                     help="HOST[:PORT] this server may pull from, besides the registries it has credentials "
                     "for (repeatable; HOST allows every port, '*' any registry; the environment variable "
                     "takes a space-separated list)."),
    ] = None,
    request_timeout: Annotated[float, typer.Option("--request-timeout", min=0.1, help="Seconds a client has to "
                               "send its request headers, and again its body.")] = 30.0,
    registry_timeout: Annotated[float, typer.Option("--registry-timeout", min=0.1, help="Seconds an add waits for "
                                "the registry in all (resolving the tag).")] = 30.0,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate chain: serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    admission_config: Annotated[
        Path | None,
        typer.Option("--admission-config", help="YAML file: serve the Kubernetes admission webhook and Gatekeeper "
                     "provider (docs/admission.md); needs --tls-cert/--tls-key."),
    ] = None,
    watch_interval: Annotated[float, typer.Option("--watch-interval", min=1.0, help="Seconds between re-resolving "
                              "watched tags (registry manifest requests only; docs/notifications.md).")] = 3600.0,
    notifications_config: Annotated[
        Path | None,
        typer.Option("--notifications-config", help="YAML file with anchore-engine's `webhooks` configuration "
                     "(docs/notifications.md)."),
    ] = None,
    allow_notify_host: Annotated[
        list[str] | None,
        typer.Option("--allow-notify-host", help="HOST[:PORT] notification endpoints added over the API may reach "
                     "(repeatable; HOST allows every port, an IP or CIDR block the internal addresses names "
                     "resolve to, '*' any public host; default: $CI_GATE_ALLOW_NOTIFY_HOSTS, "
                     "comma-separated; the --notifications-config hosts always may)."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", envvar="CI_GATE_DATABASE", show_envvar=False, show_default=False,
                     help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DB: keep all state in PostgreSQL, shared by "
                     "any number of replicas (default: SQLite in --data-dir; $CI_GATE_DATABASE)."),
    ] = None,
    role: Annotated[str, typer.Option("--role", help="api (HTTP only), worker (analysis, watchers, "
                                      "notifications; /health only) or all.")] = "all",
    lease_seconds: Annotated[float, typer.Option("--lease-seconds", min=2.0, help="Seconds a replica's claim on "
                             "an analysis lasts without its heartbeat before another replica takes it over.")] = 30.0,
) -> None:
    """Serve the Anchore v2/v1 API subset CI clients use (add, wait, check, vuln, policies) on this engine."""
    password = os.environ.get(PASSWORD_VARIABLE, "")
    if not password:
        raise UsageError(f"set {PASSWORD_VARIABLE} to the password of the admin user before starting ci-gate serve")
    try:
        import cryptography  # noqa: F401  (registry credentials are stored encrypted)
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UsageError("ci-gate serve needs the server extra: pip install 'ci-gate[server]'") from None
    from ci_gate.cli.options import source_options
    from ci_gate.database_url import check_reachable, parse_database_url
    from ci_gate.server.app import ServerConfig

    if role not in ("api", "worker", "all"):
        raise UsageError(f"--role must be api, worker or all, not {role[:40]!r}")
    _check_seconds(request_timeout=request_timeout, registry_timeout=registry_timeout,
                   watch_interval=watch_interval, lease_seconds=lease_seconds)
    location = parse_database_url(database)
    check_reachable(location)
    from ci_gate.vulns.store import check_store_file, locate

    if notifications_config is not None:
        _check_notifications_config(notifications_config)
    store_path, origin = locate(vuln_db)
    if origin != "default":  # a store that was named must be readable before the first image is gated
        check_store_file(store_path, origin)
    from ci_gate.server.app import serve as run_server
    from ci_gate.sources.registry_auth import registry_allowlist

    source = source_options(None, insecure_registry, ca_bundle)
    # Callers name the images: the server pulls only from registries it was told about.
    source = replace(source, allowed_registries=registry_allowlist(source, allow_registry or []))
    config = ServerConfig(data_dir=data_dir or _default_data_dir(), admin_password=password, vuln_db=vuln_db,
                          workers=workers, source=source, request_timeout=request_timeout,
                          registry_deadline=registry_timeout, tls_cert=tls_cert, tls_key=tls_key,
                          admission_config=admission_config, watch_interval=watch_interval,
                          notifications_config=notifications_config,
                          allowed_notify_hosts=_notify_hosts(allow_notify_host), database=location, role=role,
                          lease_seconds=lease_seconds)
    _check_tls(tls_cert, tls_key)
    run_server(config, host, port)


MAX_SECONDS = 86400.0
"""The longest timeout, interval or lease serve takes (a day): waits are timed by threads that cannot
wait for ever, and a lease beyond it would keep a dead replica's analyses from being taken over."""


def _check_seconds(**given: float) -> None:
    """Each value a finite number of seconds up to MAX_SECONDS (click's range lets nan and inf through:
    a nan interval makes its thread wait for nothing and spin, an infinite one stops it)."""
    for name, seconds in given.items():
        if not math.isfinite(seconds) or seconds > MAX_SECONDS:
            raise UsageError(f"--{name.replace('_', '-')} must be a number of seconds up to {MAX_SECONDS:g} (a "
                             f"day), not {seconds:g}")


_HOOK_KEYS = frozenset({"url", "webhook_user", "webhook_pass", "ssl_verify", "format", "signing_secret"})
_ENGINE_ONLY_HOOKS = ("event_log", "error_event")
"""anchore-engine hooks ci-gate serve has no events for: accepted (a whole engine config has them), not sent."""


def _check_notifications_config(path: Path) -> None:
    """The operator's anchore-engine `webhooks` file, checked before the server starts.

    The server's loader takes the keys it knows: a mistyped hook (`genral:`) or field (`urll:`) would
    start a server that notifies no one, so every key must be known, and a parse error is one line."""
    import yaml

    from ci_gate.notify.endpoints import NOTIFICATION_TYPES

    def refuse(problem: str) -> UsageError:
        return UsageError(f"--notifications-config {path}: {problem}")

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise refuse(f"cannot read it ({error.strerror or error}); give the YAML file with anchore-engine's "
                     "webhooks section") from None
    except UnicodeDecodeError:
        raise refuse("not UTF-8 text; give the YAML file with anchore-engine's webhooks section") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise refuse(f"not valid YAML{where} ({getattr(error, 'problem', None) or 'syntax error'}); fix the "
                     "file") from None
    hooks = ("general", *NOTIFICATION_TYPES)
    known = {"webhook_user", "webhook_pass", "ssl_verify", "signing_secret", *hooks, *_ENGINE_ONLY_HOOKS}
    whole_config = isinstance(document, dict) and "webhooks" in document
    section = document["webhooks"] if whole_config else document
    if not isinstance(section, dict) or not (whole_config or known.intersection(section)):
        raise refuse("must hold a `webhooks:` mapping (anchore-engine's config: general: {url: ...}, "
                     "<notification_type>: {url: ...})")
    unknown = sorted(str(key) for key in section if key not in known)
    if unknown:
        raise refuse(f"unknown key webhooks.{unknown[0]}; the keys are {', '.join(sorted(known))}")
    if not any(section.get(hook) is not None for hook in hooks):
        raise refuse(f"configures no hook: add general: {{url: ...}} or one of {', '.join(hooks[1:])}")
    if not isinstance(section.get("ssl_verify", True), bool):
        raise refuse("webhooks.ssl_verify must be true or false")
    for hook in hooks:
        entry = section.get(hook)
        if not isinstance(entry, dict):
            continue  # a missing url is the loader's one line
        unknown = sorted(str(key) for key in entry if key not in _HOOK_KEYS)
        if unknown:
            raise refuse(f"unknown key webhooks.{hook}.{unknown[0]}; a hook takes {', '.join(sorted(_HOOK_KEYS))}")
        try:
            urlsplit(str(entry.get("url", ""))).port  # noqa: B018 (raises ValueError on a malformed host or port)
        except ValueError:  # the message would quote the URL, which may hold a token
            raise refuse(f"webhooks.{hook}.url is not a valid URL (check the brackets of an IPv6 host and the "
                         "port)") from None


def _notify_hosts(given: list[str] | None) -> tuple[str, ...]:
    """--allow-notify-host, else the comma-separated environment variable; each entry checked."""
    from ci_gate.notify.hosts import ENVIRONMENT_VARIABLE, parse_entry

    entries = given if given else os.environ.get(ENVIRONMENT_VARIABLE, "").split(",")
    try:
        return tuple(dict.fromkeys(parse_entry(entry) for entry in entries if entry.strip()))
    except ValueError as error:
        raise UsageError(str(error)) from None


def _check_tls(cert: Path | None, key: Path | None) -> None:
    """Both or neither, and loadable: uvicorn would otherwise fail with a traceback."""
    if (cert is None) != (key is None):
        raise UsageError("give --tls-cert and --tls-key together (the certificate chain and its private key)")
    if cert is not None and key is not None:
        import ssl

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as error:
            raise UsageError(f"cannot load --tls-cert {cert} with --tls-key {key}: {error}; give PEM files of "
                             "one certificate chain and its key") from None


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the root app (ci_gate.cli.COMMANDS)."""
    app.command("serve")(serve)
