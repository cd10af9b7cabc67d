"""Where registry credentials come from, in the order a CI job expects them, and where they may go.

Credentials are bound to the registry they are for, as in Docker's config (one entry per host):

1. `SourceOptions.registry_username` / `registry_password`, for `SourceOptions.registry_host` only;
2. the environment: CI_GATE_REGISTRY_USERNAME / CI_GATE_REGISTRY_PASSWORD, for the registry named
   by CI_GATE_REGISTRY_HOST only (the command line binds them to the image's own registry when
   CI_GATE_REGISTRY_HOST is not set; `ci-gate serve` requires it);
3. `$REGISTRY_AUTH_FILE` (podman/skopeo auth.json, same `auths` format as Docker's);
4. the Docker config (`SourceOptions.docker_config`, else `$DOCKER_CONFIG/config.json`, else
   `~/.docker/config.json`): `credHelpers[host]`, then `auths[host]` (`auth` base64 "user:pass",
   or `username`/`password`, or `identitytoken`), then `credsStore`;
5. in a GitLab CI job, for the project's own registry (`CI_REGISTRY`): `CI_REGISTRY_USER` /
   `CI_REGISTRY_PASSWORD`, else `CI_JOB_TOKEN` as user `gitlab-ci-token` (GitLab's documented
   pair); the instance (`CI_SERVER_HOST`) may run the token service.

Where they may go: the registry itself, and a Bearer token service on the registry's own host (same
name, a parent or a subdomain: registry.gitlab.com → gitlab.com, registry-1.docker.io →
auth.docker.io; for an IP address or localhost the same port too). A realm elsewhere gets an error,
not the credentials; a redirect is followed without them (`registry.py`). `ci-gate serve` pulls only
from an allowlist (`registry_allowlist`, `check_registry_allowed`).

Credential helpers follow Docker's protocol: `docker-credential-NAME get` with the server on stdin
answers `{"ServerURL", "Username", "Secret"}`; the Username `<token>` means Secret is an identity
(refresh) token. A helper named in the config but absent from PATH is an error with a fix, not a
silent anonymous pull. Secrets are held in fields excluded from repr and never put in messages.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from ci_gate.errors import CiGateError, SourceError, UsageError
from ci_gate.sources.interface import SourceOptions
from ci_gate.sources.schemes import LOCAL_SCHEMES, Scheme

ENV_USERNAME = "CI_GATE_REGISTRY_USERNAME"
ENV_PASSWORD = "CI_GATE_REGISTRY_PASSWORD"
ENV_HOST = "CI_GATE_REGISTRY_HOST"
GITLAB_JOB_TOKEN_USER = "gitlab-ci-token"
HELPER_TIMEOUT_SECONDS = 30.0
DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io",
                   "https://index.docker.io/v1", "https://registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    """What to present to one registry."""

    username: str | None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    """An OAuth2 refresh token (Docker `identitytoken`), exchanged at the token endpoint."""
    origin: str = ""
    """Where they came from, for messages: e.g. "--registry-username", "CI_GATE_REGISTRY_USERNAME",
    "/root/.docker/config.json", "docker-credential-pass"."""
    token_hosts: tuple[str, ...] = ()
    """Hosts besides the registry's own that may run its token service (GitLab's instance)."""


def resolve_credentials(host: str, options: SourceOptions) -> Credentials | None:
    """Credentials for `host` (the registry as the user named it, e.g. docker.io or 127.0.0.1:5000)."""
    given = options.registry_username is not None or options.registry_password is not None
    if given and options.registry_host and same_host(options.registry_host, host):
        return Credentials(options.registry_username, options.registry_password, origin="--registry-username")
    username, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    bound = os.environ.get(ENV_HOST)
    if (username or password) and bound and same_host(bound, host):
        return Credentials(username, password, origin=ENV_USERNAME)
    auth_file = os.environ.get("REGISTRY_AUTH_FILE")
    if auth_file:
        found = _from_config_file(auth_file, host, required=True)
        if found is not None:
            return found
    found = _from_config_file(docker_config_path(options), host, required=bool(options.docker_config))
    if found is not None:
        return found
    return _from_gitlab(host)


def unbound_credentials_hint(host: str, options: SourceOptions) -> str:
    """Why the username/password the user gave were not sent to `host` (for a 401 message), or ""."""
    if options.registry_username is None and not os.environ.get(ENV_USERNAME):
        return ""
    bound = options.registry_host or os.environ.get(ENV_HOST)
    if not bound:
        return (f"; {ENV_USERNAME}/{ENV_PASSWORD} are sent to no registry until {ENV_HOST} names the one "
                f"they are for (e.g. {ENV_HOST}={host})")
    return f"; {ENV_USERNAME}/{ENV_PASSWORD} are for {bound} ({ENV_HOST}), so they were not sent to {host}"


def _from_gitlab(host: str) -> Credentials | None:
    """GitLab's predefined variables for the project's own registry, in a GitLab CI job."""
    registry = os.environ.get("CI_REGISTRY")
    if not registry or not same_host(registry, host):
        return None
    instance = tuple(name for name in (os.environ.get("CI_SERVER_HOST"),) if name)
    user, password = os.environ.get("CI_REGISTRY_USER"), os.environ.get("CI_REGISTRY_PASSWORD")
    if user and password:
        return Credentials(user, password, origin="CI_REGISTRY_USER", token_hosts=instance)
    job_token = os.environ.get("CI_JOB_TOKEN")
    if job_token:
        return Credentials(GITLAB_JOB_TOKEN_USER, job_token, origin="CI_JOB_TOKEN", token_hosts=instance)
    return None


# --- which hosts are the same registry ------------------------------------------------------------

_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def normalize_host(text: str) -> str:
    """`https://Registry.Example.com:5000/v2/` → `registry.example.com:5000`; Docker Hub's names → docker.io."""
    text = text.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].rsplit("@", 1)[-1]
    return "docker.io" if text in _HUB_NAMES else text


def split_host(host: str) -> tuple[str, str | None]:
    """(`name`, `port` or None) of HOST[:PORT], IPv6 `[::1]:5000` included."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else None
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, port
    return host, None


def _is_address(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def same_host(first: str, second: str) -> bool:
    """Whether two HOST[:PORT] texts name the same registry (Docker Hub's aliases are one)."""
    return normalize_host(first) == normalize_host(second)


def same_operator(registry: str, other: str) -> bool:
    """Whether `other` is run by whoever runs `registry`: the same name on any port, a parent or a
    subdomain (registry.gitlab.com and gitlab.com; docker.io and auth.docker.io). An IP address or
    localhost is only itself, port included: another port of 127.0.0.1 may be anyone's."""
    registry, other = normalize_host(registry), normalize_host(other)
    if registry == other:
        return True
    (name, _), (other_name, _) = split_host(registry), split_host(other)
    if _is_address(name) or _is_address(other_name):
        return False
    if name == other_name:
        return True
    shorter, longer = sorted((name, other_name), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def may_receive_credentials(registry: str, host: str, credentials: Credentials) -> bool:
    """Whether a token service on `host` may be sent the credentials for `registry`."""
    return same_operator(registry, host) or any(same_operator(extra, host) for extra in credentials.token_hosts)


# --- the allowlist of ci-gate serve ---------------------------------------------------------------

ALLOW_ANY = "*"


def registry_allowlist(options: SourceOptions, extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The registries a server may pull from: those it has credentials for (the bound environment
    credentials, the Docker config's and auth file's entries, GitLab's CI_REGISTRY) plus `extra`.

    Raises UsageError when CI_GATE_REGISTRY_USERNAME is set without CI_GATE_REGISTRY_HOST: a server
    must never guess where its credentials may go."""
    hosts: list[str] = []
    username = options.registry_username or os.environ.get(ENV_USERNAME)
    bound = options.registry_host or os.environ.get(ENV_HOST)
    if username:
        if not bound:
            raise UsageError(f"{ENV_USERNAME} is set but {ENV_HOST} is not: set {ENV_HOST} to the registry "
                             "HOST[:PORT] these credentials are for (they are sent to no other)")
        hosts.append(bound)
    for path in (os.environ.get("REGISTRY_AUTH_FILE"), docker_config_path(options)):
        if path:
            hosts.extend(_configured_hosts(path))
    if os.environ.get("CI_REGISTRY"):
        hosts.append(os.environ["CI_REGISTRY"])
    for entry in extra:
        entry = entry.strip()
        if entry:
            hosts.append(entry if entry == ALLOW_ANY else normalize_host(entry))
    return tuple(dict.fromkeys(normalize_host(host) if host != ALLOW_ANY else host for host in hosts))


def _configured_hosts(path: str) -> list[str]:
    try:
        with open(path, "rb") as handle:
            document = json.loads(handle.read(4 * 1024 * 1024))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict):
        return []
    hosts: list[str] = []
    for key in ("auths", "credHelpers"):
        section = document.get(key)
        if isinstance(section, dict):
            hosts.extend(str(name) for name in section)
    return hosts


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether `host` is on the allowlist: `*`, the same HOST[:PORT], or HOST (any port) or a host run
    by the same operator as an entry (its token service, its subdomains)."""
    host = normalize_host(host)
    name, _ = split_host(host)
    for entry in allowed:
        if entry in (ALLOW_ANY, host):
            return True
        entry_name, entry_port = split_host(entry)
        if entry_port is None and entry_name == name:
            return True
        if same_operator(entry, host):
            return True
    return False


def check_registry_allowed(host: str, options: SourceOptions, what: str = "registry") -> None:
    """Raise SourceError unless `options.allowed_registries` (when set) lets `host` be contacted."""
    allowed = options.allowed_registries
    if allowed is None or host_allowed(host, allowed):
        return
    raise SourceError(f"{what} {host} is not on this server's list of registries it may pull from; an "
                      f"administrator can add it with ci-gate serve --allow-registry {normalize_host(host)}")


def credentials_host_for_image(image: str | None) -> str | None:
    """The registry of an image argument (`registry:HOST/REPO:TAG` or a bare reference), else None:
    where the command line's environment credentials go when CI_GATE_REGISTRY_HOST is not set."""
    if not image:
        return None
    text = image.strip()
    scheme, separator, rest = text.partition(":")
    if separator and (scheme in LOCAL_SCHEMES or scheme in (Scheme.DOCKER, "file")):
        return None
    if separator and scheme == "registry":
        text = rest
    elif os.path.exists(text):
        return None
    from ci_gate.sources.references import parse_reference

    try:
        return parse_reference(text).host
    except CiGateError:
        return None


def docker_config_path(options: SourceOptions) -> str:
    if options.docker_config:
        return options.docker_config
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _candidate_keys(host: str) -> list[str]:
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return list(DOCKER_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def _from_config_file(path: str, host: str, *, required: bool) -> Credentials | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(4 * 1024 * 1024)
    except FileNotFoundError:
        if required:
            raise SourceError(f"registry credentials file {path} does not exist; fix the path") from None
        return None
    except OSError as error:
        raise SourceError(f"cannot read registry credentials file {path} ({error.strerror})") from None
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise SourceError(f"registry credentials file {path} is not valid JSON; fix or remove it") from None
    if not isinstance(document, dict):
        raise SourceError(f"registry credentials file {path} is not a JSON object; fix or remove it")
    keys = _candidate_keys(host)
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key in keys:
            if isinstance(helpers.get(key), str) and helpers[key]:
                return run_credential_helper(helpers[key], key, path)
    auths = document.get("auths")
    if isinstance(auths, dict):
        for key in keys:
            entry = auths.get(key)
            if isinstance(entry, dict):
                found = _from_auth_entry(entry, path, host)
                if found is not None:
                    return found
    store = document.get("credsStore")
    if isinstance(store, str) and store:
        return run_credential_helper(store, keys[0], path)
    return None


def _from_auth_entry(entry: dict[str, Any], path: str, host: str) -> Credentials | None:
    identity = entry.get("identitytoken")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise SourceError(f"the 'auth' entry for {host} in {path} is not base64 of user:password; run "
                              "docker login again") from None
        username, separator, password = decoded.partition(":")
        if not separator:
            raise SourceError(f"the 'auth' entry for {host} in {path} is not base64 of user:password; run "
                              "docker login again")
        return Credentials(username, password, identity if isinstance(identity, str) and identity else None,
                           origin=path)
    plain_username, plain_password = entry.get("username"), entry.get("password")
    if isinstance(plain_username, str) and isinstance(plain_password, str):
        return Credentials(plain_username, plain_password, origin=path)
    if isinstance(identity, str) and identity:
        return Credentials(None, None, identity, origin=path)
    return None


def run_credential_helper(name: str, server: str, config_path: str) -> Credentials | None:
    """Ask `docker-credential-NAME get` for the server's credentials (Docker's helper protocol)."""
    program = f"docker-credential-{name}"
    executable = shutil.which(program)
    if executable is None:
        raise SourceError(f"{config_path} names the credential helper {program} for {server}, but it is not "
                          f"on PATH; install it, or remove it from {config_path} and pass credentials with "
                          f"{ENV_USERNAME}/{ENV_PASSWORD}")
    try:
        result = subprocess.run([executable, "get"], input=server.encode(), capture_output=True,
                                timeout=HELPER_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError(f"credential helper {program} did not answer within {HELPER_TIMEOUT_SECONDS:g}s; "
                          "check that it can run non-interactively in CI") from None
    except OSError as error:
        raise SourceError(f"credential helper {program} could not run ({error.strerror})") from None
    if result.returncode != 0:
        output = result.stdout.decode("utf-8", "replace").strip()
        if "credentials not found" in output.lower():
            return None
        raise SourceError(f"credential helper {program} failed for {server} (exit {result.returncode}); run "
                          f"`echo {server} | {program} get` to see why")
    try:
        answer = json.loads(result.stdout)
        username, secret = answer.get("Username"), answer.get("Secret")
    except (ValueError, AttributeError):
        raise SourceError(f"credential helper {program} answered something that is not its JSON protocol; "
                          "check the helper's version") from None
    if not isinstance(secret, str):
        raise SourceError(f"credential helper {program} gave no Secret for {server}")
    if username == "<token>":
        return Credentials(None, None, secret, origin=program)
    return Credentials(username if isinstance(username, str) else None, secret, origin=program)
