"""`registry:REF` — pull an image's documents and stream its layers from an OCI distribution registry.

No daemon: plain HTTP requests through `ci_gate.http` (timeouts, retries that honour Retry-After).
The flow follows the distribution spec:

1. `GET /v2/` — the ping; a 401 carries the challenge (`WWW-Authenticate: Basic realm=...` or
   `Bearer realm=...,service=...,scope=...`). Basic: credentials on every request. Bearer: a token
   from the realm (GET with the credentials as basic auth when we have any; a Docker identity token
   is exchanged with the OAuth2 refresh-token grant), `token` or `access_token` in the answer.
2. `GET /v2/REPO/manifests/REF` with Accept for OCI manifest + index and Docker v2 manifest + list
   (registry 2.8 answers 404 to an OCI manifest when no OCI type is accepted). The body's digest
   must equal `Docker-Content-Digest` and, for a digest reference, the reference itself.
   An index / list is resolved to the wanted platform and that manifest fetched by digest.
3. `GET /v2/REPO/blobs/DIGEST` — the config (verified here) and the layers (streamed raw, chunk by
   chunk; the layer reader verifies the digest). Redirects to blob storage are followed hop by hop
   (`ci_gate.http.send`): the Authorization goes only to the registry's own origin, never where a
   redirect leads, and under an allowlist (`ci-gate serve`) a redirect may not leave it.

Credentials are for the registry they are bound to (`registry_auth`), and a Bearer realm gets them
only when it is the registry's own token service (same host, parent or subdomain; for an address
the same port).

Plain HTTP is used only for loopback hosts (127.0.0.0/8, localhost, ::1) and hosts the user lists
as insecure; everything else is HTTPS with certificate verification.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import os
import re
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urlsplit

import requests
import requests.auth

from ci_gate.errors import LimitExceededError, SourceError, clipped, quoted
from ci_gate.http import HttpError, RetryPolicy, TokenAuth, host_of, new_session, send
from ci_gate.sources.archive import ClosingRawImage
from ci_gate.sources.interface import ImageSource, LayerBlob, SourceOptions
from ci_gate.sources.oci_layout import (
    ACCEPT_MANIFESTS,
    Descriptor,
    digest_of,
    resolve_image,
)
from ci_gate.sources.references import RegistryReference, parse_reference
from ci_gate.sources.registry_auth import (
    ENV_PASSWORD,
    ENV_USERNAME,
    Credentials,
    check_registry_allowed,
    host_allowed,
    may_receive_credentials,
    resolve_credentials,
    same_operator,
    unbound_credentials_hint,
)

REGISTRY_RETRY = RetryPolicy(attempts=3)
"""Fewer tries than the default: a registry that does not answer should fail the job within minutes."""

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def uses_plain_http(host: str, options: SourceOptions) -> bool:
    return is_loopback(host) or host in options.insecure_registries


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    parameters = {match.group(1).lower(): (match.group(2) if match.group(2) is not None else match.group(3))
                  for match in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), parameters


def _registry_error(response: requests.Response) -> str:
    """The first error code of a distribution-spec error body, for messages (short, no secrets)."""
    try:
        errors = response.json().get("errors") or []
        code = str(errors[0].get("code", ""))[:40]
        return f" {code}" if code.isupper() else ""
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


class RegistryClient:
    """The distribution API for one repository, with authentication done on the first 401."""

    def __init__(self, reference: RegistryReference, options: SourceOptions):
        check_registry_allowed(reference.host, options)
        self.reference = reference
        self.options = options
        self.plain_http = uses_plain_http(reference.host, options)
        self.base = f"{'http' if self.plain_http else 'https'}://{reference.api_host}"
        if options.ca_bundle and not os.path.isfile(options.ca_bundle):
            raise SourceError(f"CA bundle {options.ca_bundle} does not exist; pass an existing PEM file to "
                              "--ca-bundle")
        self.session = new_session(options.ca_bundle)
        self.auth: requests.auth.AuthBase | None = None
        self._credentials: Credentials | None = None
        self._credentials_resolved = False

    # --- transport ------------------------------------------------------------------------------

    def close(self) -> None:
        self.session.close()

    def credentials(self) -> Credentials | None:
        if not self._credentials_resolved:
            self._credentials = resolve_credentials(self.reference.host, self.options)
            self._credentials_resolved = True
        return self._credentials

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return send(self.session, method, url, timeout=self.options.timeout, retry=REGISTRY_RETRY,
                        redirect_check=self._check_redirect, **kwargs)
        except HttpError as error:
            raise self._transport_error(error) from None

    def _check_redirect(self, url: str) -> None:
        """A redirect (to blob storage) is followed only within the allowlist, never to plain HTTP
        from HTTPS; it never carries the Authorization (`send` keeps that to the first origin)."""
        target = host_of(url)
        allowed = self.options.allowed_registries
        if allowed is not None and not (host_allowed(target, allowed) or same_operator(self.reference.host, target)):
            raise SourceError(f"registry {self.reference.host} redirected a download to {target}, which is not on "
                              "this server's list of registries it may pull from; an administrator can add it "
                              f"with ci-gate serve --allow-registry {target}")
        if url.startswith("http://") and not self.plain_http and not uses_plain_http(target, self.options):
            raise SourceError(f"registry {self.reference.host} redirected a download to plain-HTTP {target}; "
                              f"refusing (add --insecure-registry {target} to allow it)")

    def _transport_error(self, error: HttpError) -> SourceError:
        host = error.host
        if error.kind == "timeout":
            return SourceError(f"registry {host} did not answer within {self.options.timeout:g}s; check the "
                               "address and the network, or raise --timeout")
        if error.kind == "tls":
            return SourceError(f"TLS verification failed for registry {host}; pass --ca-bundle FILE for a "
                               "private CA, or --insecure-registry HOST if it only speaks plain HTTP")
        if error.kind == "connection":
            reason = error.detail.removeprefix("could not connect (").rstrip(")")
            return SourceError(f"could not connect to registry {host} ({reason}); check the address, port "
                               "and network")
        if error.kind == "redirects":
            return SourceError(f"registry {self.reference.host} redirected too often (a redirect loop); the "
                               "registry or a proxy is misconfigured")
        return SourceError(f"registry {host}: {error.detail}")

    def get(self, path: str, *, headers: dict[str, str] | None = None, stream: bool = False,
            what: str) -> requests.Response:
        """GET a registry path, authenticating on a 401 once; 401/403 after that become SourceErrors."""
        url = self.base + path
        response = self._send("GET", url, headers=headers, stream=stream, auth=self.auth)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            self.authenticate(challenge)
            response = self._send("GET", url, headers=headers, stream=stream, auth=self.auth)
        if response.status_code in (401, 403):
            response.close()
            raise self._denied(response.status_code, what)
        return response

    def _denied(self, status: int, what: str) -> SourceError:
        host, repository = self.reference.host, self.reference.repository
        credentials = self.credentials()
        if credentials is None:
            return SourceError(f"registry {host} requires credentials for {repository} ({status}); run "
                               f"docker login {host}, or set {ENV_USERNAME} and {ENV_PASSWORD}"
                               + unbound_credentials_hint(host, self.options))
        if status == 403:
            return SourceError(f"registry {host} denied access to {repository} ({status}) for the "
                               f"credentials from {credentials.origin}; check that the account may pull it")
        return SourceError(f"registry {host} rejected the credentials for {repository} ({status}): check the "
                           f"username and password from {credentials.origin}")

    # --- authentication -------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/: learn the challenge early and make sure this is a registry."""
        response = self._send("GET", f"{self.base}/v2/", auth=self.auth)
        response.close()
        if response.status_code == 401:
            self.authenticate(response.headers.get("WWW-Authenticate", ""))
            return
        if response.status_code == 404:
            raise SourceError(f"{self.reference.host} is not an OCI registry (GET /v2/ answered 404); check "
                              "the host name")
        if response.status_code >= 400:
            raise SourceError(f"registry {self.reference.host} answered {response.status_code} to GET /v2/; "
                              "it is unavailable, try again later")

    def authenticate(self, challenge: str) -> None:
        scheme, parameters = parse_challenge(challenge)
        credentials = self.credentials()
        if scheme == "basic":
            if credentials is None or credentials.username is None or credentials.password is None:
                raise self._denied(401, "ping")
            raw = f"{credentials.username}:{credentials.password}".encode()
            self.auth = TokenAuth(base64.b64encode(raw).decode("ascii"), scheme="Basic")
        elif scheme == "bearer":
            self.auth = TokenAuth(self._fetch_token(parameters, credentials))
        else:
            raise SourceError(f"registry {self.reference.host} asks for authentication scheme "
                              f"{scheme or 'none'!r}, which ci-gate does not support (Basic and Bearer are)")

    def _fetch_token(self, parameters: dict[str, str], credentials: Credentials | None) -> str:
        realm = parameters.get("realm", "")
        realm_parts = urlsplit(realm)
        host = self.reference.host
        if realm_parts.scheme not in ("http", "https") or not realm_parts.netloc:
            raise SourceError(f"registry {host} sent a Bearer challenge without a valid realm URL; the "
                              "registry is misconfigured")
        realm_host = realm_parts.netloc.rsplit("@", 1)[-1]
        allowed = self.options.allowed_registries
        if allowed is not None and not (host_allowed(realm_host, allowed) or same_operator(host, realm_host)):
            raise SourceError(f"registry {host} sends its token requests to {realm_host}, which is not on this "
                              "server's list of registries it may pull from; an administrator can add it with "
                              f"ci-gate serve --allow-registry {realm_host}")
        if credentials is not None and not may_receive_credentials(host, realm_host, credentials):
            raise SourceError(f"registry {host} sends its token requests to {realm_host}, another host; "
                              f"ci-gate does not send the credentials for {host} there (a token service must be "
                              "on the registry's own host, a parent or a subdomain of it)")
        if realm_parts.scheme == "http" and not uses_plain_http(realm_host, self.options) and credentials:
            raise SourceError(f"registry {host} sends its token requests to plain-HTTP {realm_host}; "
                              "refusing to send credentials unencrypted (add --insecure-registry "
                              f"{realm_host} to allow it)")
        scope = f"repository:{self.reference.repository}:pull"
        query = {"scope": scope}
        if parameters.get("service"):
            query["service"] = parameters["service"]
        if credentials is not None and credentials.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": credentials.identity_token,
                    "client_id": "ci-gate", **query}
            response = self._token_request("POST", realm, data=form)
        else:
            basic = None
            if credentials is not None and credentials.username is not None:
                basic = requests.auth.HTTPBasicAuth(credentials.username, credentials.password or "")
            response = self._token_request("GET", realm, params=query, auth=basic)
        with response:
            if response.status_code in (401, 403):
                raise self._denied(401 if credentials else response.status_code, "token")
            if response.status_code != 200:
                raise SourceError(f"the token service of registry {host} answered {response.status_code}; "
                                  "try again later or check the registry's auth configuration")
            try:
                answer = response.json()
            except ValueError:
                raise SourceError(f"the token service of registry {host} did not answer JSON") from None
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceError(f"the token service of registry {host} answered without a token")
        return token

    def _token_request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self._send(method, url, **kwargs)

    # --- documents and blobs --------------------------------------------------------------------

    def read_limited(self, response: requests.Response, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    break
        except (requests.RequestException, OSError):
            raise SourceError(f"registry {self.reference.host}: the download was interrupted; try "
                              "again") from None
        finally:
            response.close()
        return b"".join(chunks)

    def manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or index, checked against Docker-Content-Digest."""
        path = f"/v2/{self.reference.repository}/manifests/{reference}"
        accept = {"Accept": ", ".join(ACCEPT_MANIFESTS)}
        image = f"{self.reference.repository}:{reference}"
        response = self.get_found(
            path, headers=accept, what="manifest", answered=f"the manifest of {image}",
            missing=lambda found: f"image not found: {self.reference.host}/{image} (404{_registry_error(found)}); "
                                  "check the name and tag")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        header_digest = response.headers.get("Docker-Content-Digest")
        body = self.read_limited(response, self.options.limits.max_metadata_bytes)
        if len(body) > self.options.limits.max_metadata_bytes:
            raise LimitExceededError(f"registry {self.reference.host}: the manifest of {reference} is larger "
                                     f"than the metadata limit ({self.options.limits.max_metadata_bytes} "
                                     "bytes)")
        digest = reference if reference.startswith(("sha256:", "sha512:")) else digest_of(body)
        if header_digest:
            header_digest = header_digest.strip()
            algorithm = header_digest.split(":", 1)[0]
            if algorithm not in ("sha256", "sha512"):
                raise SourceError(f"registry {self.reference.host}: the manifest of {reference} carries a "
                                  f"Docker-Content-Digest with algorithm {quoted(algorithm, 20)}, which cannot be "
                                  "verified (only sha256 and sha512 can); the registry is misbehaving")
            if digest_of(body, algorithm) != header_digest:
                raise SourceError(f"registry {self.reference.host}: the manifest of {reference} does not "
                                  f"match its Docker-Content-Digest {clipped(header_digest, 140)}; a proxy or the "
                                  "registry corrupted it, try again")
        return body, media_type, digest

    def blob(self, digest: str, *, what: str) -> requests.Response:
        # identity: a proxy must not gzip the transfer, or the raw stream would not match the digest.
        return self.get_found(
            f"/v2/{self.reference.repository}/blobs/{digest}", headers={"Accept-Encoding": "identity"}, what=what,
            answered=f"{what} blob {digest}",
            missing=lambda _: f"registry {self.reference.host}: the {what} blob {digest} of "
                              f"{self.reference.repository} is missing (404); the image is incomplete, re-push it")

    def get_found(self, path: str, *, headers: dict[str, str], what: str, answered: str,
                  missing: Callable[[requests.Response], str]) -> requests.Response:
        """GET `path` streamed, answered with 200; else SourceError: `missing(response)` for a 404,
        "answered CODE for `answered`" for any other status (the response closed either way)."""
        response = self.get(path, headers=headers, stream=True, what=what)
        if response.status_code != 200:
            message = (missing(response) if response.status_code == 404 else
                       f"registry {self.reference.host} answered {response.status_code} for {answered}; "
                       "try again later")
            response.close()
            raise SourceError(message)
        return response


class _ResponseStream(io.RawIOBase):
    """The raw (still compressed) bytes of a blob response; transport failures become SourceErrors."""

    def __init__(self, response: requests.Response, host: str, digest: str):
        super().__init__()
        self._response = response
        self._raw = response.raw
        self._host = host
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._raw.read(len(buffer), decode_content=False)
        except Exception as error:  # urllib3/requests/socket errors: the download broke off
            raise SourceError(f"registry {self._host}: the download of layer {self._digest[:19]}… broke off "
                              f"({type(error).__name__}); try again") from None
        count = len(data)
        memoryview(buffer)[:count] = data
        return count

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class RegistryBlob(LayerBlob):
    """A layer in a registry; every open() is a new GET streamed in chunks."""

    def __init__(self, client: RegistryClient, digest: str, size: int, media_type: str, diff_id: str | None):
        self.client = client
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.diff_id = diff_id

    def open(self) -> IO[bytes]:
        response = self.client.blob(self.digest, what="layer")
        return io.BufferedReader(_ResponseStream(response, self.client.reference.host, self.digest),
                                 buffer_size=1024 * 1024)

    def __repr__(self) -> str:
        return f"<RegistryBlob {self.client.reference.host}/{self.client.reference.repository}@{self.digest}>"


class RegistrySource(ImageSource):
    scheme = "registry"

    def open(self, location: str, options: SourceOptions) -> ClosingRawImage:
        reference = parse_reference(location)
        where = f"registry:{reference}"
        client = RegistryClient(reference, options)
        try:
            client.ping()
            body, media_type, top_digest = client.manifest(reference.reference)
            documents = {top_digest: body}

            def fetch(descriptor: Descriptor, what: str) -> bytes:
                if descriptor.digest in documents:
                    return documents[descriptor.digest]
                if what in ("manifest", "index"):
                    data, _, _ = client.manifest(descriptor.digest)
                    return data
                response = client.blob(descriptor.digest, what=what)
                return client.read_limited(response, options.limits.max_metadata_bytes)

            top = Descriptor(media_type=media_type, digest=top_digest, size=len(body))
            resolved = resolve_image(fetch, top, options, where)
            layers: list[LayerBlob] = [RegistryBlob(client, layer.digest, layer.size, layer.media_type,
                                                    layer.diff_id) for layer in resolved.layers]
        except BaseException:
            client.close()
            raise
        return resolved.opened(
            f"registry:{location}", self.scheme, layers, [client.close],
            repo_tags=[f"{reference.host}/{reference.repository}:{reference.tag}"] if reference.tag else [],
            repo_digests=[f"{reference.host}/{reference.repository}@{top_digest}"],
        )
