"""Where registry credentials come from, in the order a CI job expects them.

1. `SourceOptions.registry_username` / `registry_password` (command-line flags);
2. the environment: CI_GATE_REGISTRY_USERNAME / CI_GATE_REGISTRY_PASSWORD;
3. `$REGISTRY_AUTH_FILE` (podman/skopeo auth.json, same `auths` format as Docker's);
4. the Docker config (`SourceOptions.docker_config`, else `$DOCKER_CONFIG/config.json`, else
   `~/.docker/config.json`): `credHelpers[host]`, then `auths[host]` (`auth` base64 "user:pass",
   or `username`/`password`, or `identitytoken`), then `credsStore`.

Credential helpers follow Docker's protocol: `docker-credential-NAME get` with the server on stdin
answers `{"ServerURL", "Username", "Secret"}`; the Username `<token>` means Secret is an identity
(refresh) token. A helper named in the config but absent from PATH is an error with a fix, not a
silent anonymous pull. Secrets are held in fields excluded from repr and never put in messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from ci_gate.errors import SourceError
from ci_gate.sources.interface import SourceOptions

ENV_USERNAME = "CI_GATE_REGISTRY_USERNAME"
ENV_PASSWORD = "CI_GATE_REGISTRY_PASSWORD"
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


def resolve_credentials(host: str, options: SourceOptions) -> Credentials | None:
    """Credentials for `host` (the registry as the user named it, e.g. docker.io or 127.0.0.1:5000)."""
    if options.registry_username is not None or options.registry_password is not None:
        return Credentials(options.registry_username, options.registry_password, origin="--registry-username")
    username, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    if username or password:
        return Credentials(username, password, origin=ENV_USERNAME)
    auth_file = os.environ.get("REGISTRY_AUTH_FILE")
    if auth_file:
        found = _from_config_file(auth_file, host, required=True)
        if found is not None:
            return found
    return _from_config_file(docker_config_path(options), host, required=bool(options.docker_config))


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
