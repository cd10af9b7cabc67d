"""`docker:REF` — an image from the local Docker daemon, over its unix socket (Engine API).

`GET /_ping` checks the daemon answers, then `GET /images/{name}/get` streams the image as a
`docker save` tar. That stream cannot be seeked, so it is spooled into a private temporary file
(0600, in $TMPDIR, limited by max_image_bytes) and read by the docker-archive reader; the file is
deleted on RawImage.close().

This module speaks HTTP/1.1 over AF_UNIX with the standard library's http.client: the Engine API
is a local socket, not a network service, so it needs neither retries, TLS nor the proxy handling
of `ci_gate.http`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from urllib.parse import quote, urlsplit

from ci_gate.errors import SourceError
from ci_gate.sources.archive import ClosingRawImage, spool_to_temp
from ci_gate.sources.docker_archive import open_docker_tar
from ci_gate.sources.interface import ImageSource, SourceOptions

DEFAULT_SOCKET = "/var/run/docker.sock"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix domain socket."""

    def __init__(self, socket_path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(self.timeout)
        try:
            connection.connect(self.socket_path)
        except OSError:
            connection.close()
            raise
        self.sock = connection


def daemon_socket(options: SourceOptions) -> str:
    """The daemon's socket path from --docker-host, $DOCKER_HOST or the default."""
    host = options.docker_host or os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    if host.startswith("/"):
        return host
    scheme = urlsplit(host).scheme or host
    raise SourceError(f"Docker host {host!r} uses {scheme}://, but ci-gate talks to the daemon over its unix "
                      "socket only; use unix:///path/docker.sock, or export the image with docker save and "
                      "use docker-archive:")


class DockerDaemonSource(ImageSource):
    scheme = "docker"

    def open(self, location: str, options: SourceOptions) -> ClosingRawImage:
        socket_path = daemon_socket(options)
        where = f"docker:{location}"
        if not os.path.exists(socket_path):
            raise SourceError(f"{where}: no Docker daemon socket at {socket_path}; start Docker, set "
                              "DOCKER_HOST, or use docker-archive:, oci-dir: or registry: instead")
        self._ping(socket_path, options, where)
        connection = UnixHTTPConnection(socket_path, options.timeout)
        try:
            connection.request("GET", f"/images/{quote(location, safe='/:@')}/get")
            response = connection.getresponse()
            if response.status == 404:
                raise SourceError(f"{where}: the Docker daemon has no image {location!r} "
                                  f"({_message(response)}); pull or build it first, or check the name")
            if response.status != 200:
                raise SourceError(f"{where}: the Docker daemon answered {response.status} "
                                  f"({_message(response)}); check the daemon's log")
            spooled = spool_to_temp(response, options.limits.max_image_bytes, where)
        except (OSError, http.client.HTTPException) as error:
            raise self._transport_error(error, socket_path, options, where) from None
        finally:
            connection.close()
        try:
            image = open_docker_tar(spooled.path, where, None, options, where, self.scheme)
        except BaseException:
            spooled.close()
            raise
        image.cleanups.append(spooled.close)
        return image

    def _ping(self, socket_path: str, options: SourceOptions, where: str) -> None:
        connection = UnixHTTPConnection(socket_path, options.timeout)
        try:
            connection.request("GET", "/_ping")
            response = connection.getresponse()
            body = response.read(64)
        except (OSError, http.client.HTTPException) as error:
            raise self._transport_error(error, socket_path, options, where) from None
        finally:
            connection.close()
        if response.status != 200 or body.strip() != b"OK":
            raise SourceError(f"{where}: {socket_path} did not answer the Docker ping (status "
                              f"{response.status}); is it a Docker daemon socket?")

    @staticmethod
    def _transport_error(error: Exception, socket_path: str, options: SourceOptions,
                         where: str) -> SourceError:
        if isinstance(error, TimeoutError | socket.timeout):
            return SourceError(f"{where}: the Docker daemon at {socket_path} did not answer within "
                               f"{options.timeout:g}s; check that it is healthy, or raise --timeout")
        if isinstance(error, PermissionError):
            return SourceError(f"{where}: no permission to use {socket_path}; run as a member of the docker "
                               "group")
        if isinstance(error, ConnectionRefusedError | FileNotFoundError):
            return SourceError(f"{where}: nothing listens on {socket_path}; start the Docker daemon")
        if isinstance(error, SourceError):
            return error
        return SourceError(f"{where}: talking to the Docker daemon at {socket_path} failed "
                           f"({type(error).__name__}); check that the daemon is healthy")


def _message(response: http.client.HTTPResponse) -> str:
    """The `message` of a Docker Engine API error body, shortened."""
    try:
        document = json.loads(response.read(64 * 1024))
        return str(document.get("message", "no message"))[:200]
    except (ValueError, AttributeError, OSError):
        return "no message"
