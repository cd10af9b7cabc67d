"""Local stand-ins for services that cannot run here, following their documented APIs exactly.

- `TokenRegistry`: the OCI distribution API (pull side) behind Docker's token authentication
  (https://distribution.github.io/distribution/spec/auth/token/): `GET /v2/` answers 401 with
  `WWW-Authenticate: Bearer realm="…/token",service="…"`; manifests and blobs answer 401 with the
  same challenge plus `scope="repository:NAME:pull"` until a token is presented; the token endpoint
  takes `service` and `scope` query parameters and HTTP Basic credentials and answers
  `{"token": …, "access_token": …, "expires_in": 300, "issued_at": …}` (401 for wrong credentials).
  Content is served from a real OCI layout written by tests/support/oci.py, with
  `Docker-Content-Digest` and the manifest's media type, and the spec's JSON error bodies.
- `DockerDaemon`: the Docker Engine API on a unix socket: `GET /_ping` → `OK`, `GET
  /images/{name}/get` → the image as a tarball (chunked, `application/x-tar`), 404 with
  `{"message": "No such image: NAME"}`. The tarball served is a docker-archive made by skopeo.
- `silent_port()`: a TCP port that accepts connections and never answers.
- `refused_port()`: a TCP port that refuses connections.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import secrets
import socket
import socketserver
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.http_server import BackgroundServer, LocalHttpServer


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, status: int, document: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class TokenRegistry(LocalHttpServer):
    """A pull-only distribution API with bearer-token auth, serving one OCI layout as one repository."""

    def __init__(self, layout: Path, repository: str, username: str, password: str, *,
                 token_field: str = "token", corrupt_digest_header: bool = False, fail_first: int = 0,
                 realm: str | None = None, blob_redirect: str | None = None):
        self.layout = layout
        self.repository = repository
        self.username = username
        self.password = password
        self.token = secrets.token_urlsafe(24)
        self.token_field = token_field
        self.corrupt_digest_header = corrupt_digest_header
        self.fail_first = fail_first
        """Answer this many requests with 503 + Retry-After: 0 before serving normally."""
        self.requests: list[tuple[str, str, str | None]] = []
        """(method, path, Authorization header) of every request, in order."""
        self.token_requests: list[dict[str, list[str]]] = []
        self.refresh_token: str | None = None
        """When set, POST /token with grant_type=refresh_token and this token gets an access token."""
        self.realm = realm
        """The challenge's realm; None = this server's own /token."""
        self.blob_redirect = blob_redirect
        """When set, blob GETs answer 307 with Location `{blob_redirect}/blobs/{digest}` (blob storage)."""
        super().__init__(self._handler())

    def _tags(self) -> dict[str, str]:
        index = json.loads((self.layout / "index.json").read_text())
        return {entry["annotations"]["org.opencontainers.image.ref.name"]: entry["digest"]
                for entry in index["manifests"] if "annotations" in entry}

    def _blob(self, digest: str) -> bytes | None:
        algorithm, _, hex_digest = digest.partition(":")
        path = self.layout / "blobs" / algorithm / hex_digest
        return path.read_bytes() if algorithm == "sha256" and len(hex_digest) == 64 and path.is_file() else None

    def _handler(self) -> type[_QuietHandler]:
        registry = self

        class Handler(_QuietHandler):
            def challenge(self, scope: str | None) -> str:
                realm = registry.realm or f"http://{registry.host}/token"
                text = f'Bearer realm="{realm}",service="fake-registry"'
                return text + (f',scope="{scope}"' if scope else "")

            def unauthorized(self, scope: str | None) -> None:
                self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required",
                                                 "detail": None}]},
                               {"WWW-Authenticate": self.challenge(scope)})

            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization")
                registry.requests.append(("GET", self.path, authorization))
                if registry.fail_first > 0:
                    registry.fail_first -= 1
                    self.send_json(503, {"errors": [{"code": "UNAVAILABLE", "message": "try later"}]},
                                   {"Retry-After": "0"})
                    return
                parts = urlsplit(self.path)
                if parts.path == "/token":
                    self.token_endpoint(parse_qs(parts.query), authorization)
                    return
                if parts.path == "/v2/":
                    if authorization != f"Bearer {registry.token}":
                        self.unauthorized(None)
                        return
                    self.send_json(200, {})
                    return
                prefix = f"/v2/{registry.repository}/"
                if not parts.path.startswith(prefix):
                    self.send_json(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not "
                                                     "known to registry"}]})
                    return
                if authorization != f"Bearer {registry.token}":
                    self.unauthorized(f"repository:{registry.repository}:pull")
                    return
                kind, _, reference = parts.path[len(prefix):].partition("/")
                reference = unquote(reference)
                if kind == "manifests":
                    self.manifest(reference)
                elif kind == "blobs" and registry.blob_redirect:
                    self.send_response(307)
                    self.send_header("Location", f"{registry.blob_redirect}/blobs/{reference}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind == "blobs":
                    data = registry._blob(reference)
                    if data is None:
                        self.send_json(404, {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Docker-Content-Digest", reference)
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self.send_json(404, {"errors": [{"code": "UNSUPPORTED", "message": "not here"}]})

            def do_POST(self) -> None:
                """The OAuth2 form of the token endpoint (Docker's identity token is a refresh token)."""
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                registry.requests.append(("POST", self.path, self.headers.get("Authorization")))
                registry.token_requests.append(form)
                if urlsplit(self.path).path != "/token":
                    self.send_json(404, {"errors": [{"code": "UNSUPPORTED", "message": "not here"}]})
                    return
                if (form.get("grant_type") != ["refresh_token"] or registry.refresh_token is None
                        or form.get("refresh_token") != [registry.refresh_token]):
                    self.send_json(401, {"error": "invalid_grant"})
                    return
                self.send_json(200, {"access_token": registry.token, "expires_in": 300, "scope": form["scope"][0]})

            def manifest(self, reference: str) -> None:
                digest = reference if reference.startswith("sha256:") else registry._tags().get(reference)
                data = registry._blob(digest) if digest else None
                if data is None or digest is None:
                    self.send_json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                                     "detail": {"Tag": reference}}]})
                    return
                media_type = json.loads(data).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
                header_digest = digest
                if registry.corrupt_digest_header:
                    header_digest = "sha256:" + "0" * 64
                self.send_response(200)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Content-Digest", header_digest)
                self.end_headers()
                self.wfile.write(data)

            def token_endpoint(self, query: dict[str, list[str]], authorization: str | None) -> None:
                registry.token_requests.append(query)
                expected = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
                if authorization != f"Basic {expected}":
                    self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]},
                                   {"WWW-Authenticate": 'Basic realm="fake-token"'})
                    return
                if query.get("service") != ["fake-registry"]:
                    self.send_json(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
                    return
                self.send_json(200, {registry.token_field: registry.token, "expires_in": 300,
                                     "issued_at": "2026-01-01T00:00:00Z"})

        return Handler


class RecordingServer(LocalHttpServer):
    """Someone else's server on another loopback port, recording every request's Authorization.

    `mode`: `challenge` answers 401 with `WWW-Authenticate: Basic` (a registry fishing for
    credentials) and 401 for a token request; `blobs` serves `/blobs/DIGEST` from an OCI layout
    (blob storage a registry redirects to); `loop` redirects every request to itself."""

    def __init__(self, mode: str, layout: Path | None = None) -> None:
        self.mode = mode
        self.layout = layout
        self.requests: list[tuple[str, str, str | None]] = []
        """(method, path, Authorization header) of every request, in order."""
        super().__init__(self._handler())

    def _handler(self) -> type[_QuietHandler]:
        recorder = self

        class Handler(_QuietHandler):
            def answer(self, method: str) -> None:
                recorder.requests.append((method, self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if recorder.mode == "loop":
                    self.send_response(302)
                    self.send_header("Location", f"{recorder.url}{self.path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = urlsplit(self.path).path
                if recorder.mode == "blobs" and recorder.layout is not None and path.startswith("/blobs/"):
                    algorithm, _, hex_digest = unquote(path[len("/blobs/"):]).partition(":")
                    blob = recorder.layout / "blobs" / algorithm / hex_digest
                    if algorithm == "sha256" and len(hex_digest) == 64 and blob.is_file():
                        data = blob.read_bytes()
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                               {"WWW-Authenticate": 'Basic realm="give me your password"'})

            def do_GET(self) -> None:
                self.answer("GET")

            def do_POST(self) -> None:
                self.answer("POST")

        return Handler


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class DockerDaemon(BackgroundServer):
    """The two Engine API endpoints `docker:` uses, on a unix socket, serving one docker-archive."""

    def __init__(self, socket_path: Path, archive: Path, image_names: set[str]):
        self.socket_path = socket_path
        self.archive = archive
        self.image_names = image_names
        self.requests: list[str] = []
        super().__init__(_UnixHTTPServer(str(socket_path), self._handler()))

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    def _handler(self) -> type[_QuietHandler]:
        daemon = self

        class Handler(_QuietHandler):
            def address_string(self) -> str:
                return "unix"

            def do_GET(self) -> None:
                daemon.requests.append(self.path)
                path = urlsplit(self.path).path
                if path == "/_ping":
                    body = b"OK"
                    self.send_response(200)
                    self.send_header("Api-Version", "1.45")
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if path.startswith("/images/") and path.endswith("/get"):
                    name = unquote(path[len("/images/"):-len("/get")])
                    if name not in daemon.image_names:
                        self.send_json(404, {"message": f"No such image: {name}"})
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-tar")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    with open(daemon.archive, "rb") as handle:
                        while chunk := handle.read(256 * 1024):
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_json(404, {"message": "page not found"})

        return Handler


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A listening TCP port on 127.0.0.1 whose connections are accepted by the kernel and never answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that refuses connections, for the whole `with` block: a socket is bound to it
    and never listens. A port probed free and closed again could be taken by the next server of this test
    or by another process before it is dialled (bind(0) hands the same port out again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])
