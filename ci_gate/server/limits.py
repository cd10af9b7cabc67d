"""What a client may cost `ci-gate serve` before it is known: body size, time, wrong passwords.

- The body is read only after authentication, only up to MAX_BODY_BYTES (a declared Content-Length
  over the cap is refused before a byte is read), and within the request deadline.
- Failed logins are counted per client address and per claimed user in a sliding window; past the
  limit the server answers 429 with Retry-After without checking the credentials.
- A connection has `request_timeout` seconds to deliver its request headers (uvicorn itself has no
  such limit: a client that sends half a header line would hold the connection forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

import h11
from starlette.requests import ClientDisconnect, Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from ci_gate.server.status_error import StatusError

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body read (a policy or an add request with its Dockerfile is far smaller)."""
DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds a client has to send its request headers, and again its body."""

FAILURE_WINDOW_SECONDS = 60.0
"""The sliding window failed logins are counted in."""
CLIENT_FAILURE_LIMIT = 10
"""Failed logins one client address may make per window (a CI job mistyping a secret retries a few times)."""
USER_FAILURE_LIMIT = 30
"""Failed logins against one user per window, from all addresses together (a distributed guess)."""
TRACKED_KEYS = 10_000
"""At most this many addresses and users are remembered, oldest forgotten first: bounded memory."""
TRUSTED_SECONDS = 3600.0
"""A client that logged in as a user within this time is not locked out by others' failures on that user."""


class BodyError(StatusError):
    """The body could not be read within the limits: the HTTP status and a one-line message."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES,
                    timeout: float = DEFAULT_REQUEST_TIMEOUT) -> bytes:
    """The request body, at most `limit` bytes, within `timeout` seconds; BodyError otherwise.

    An oversized body is not drained: the answer goes out at once and the connection is closed
    (GuardedH11Protocol), so a client can never make the server hold or even receive more than
    the cap plus one socket buffer.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyError(400, "the Content-Length header is not a number")
        if int(declared) > limit:
            raise BodyError(413, f"the request body is larger than {limit // (1024 * 1024)} MiB")
    body = bytearray()

    async def receive_all() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise BodyError(413, f"the request body is larger than {limit // (1024 * 1024)} MiB")

    try:
        await asyncio.wait_for(receive_all(), timeout)
    except asyncio.TimeoutError:
        raise BodyError(408, f"the request body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise BodyError(400, "the client closed the connection before sending the whole body") from None
    return bytes(body)


MAX_JSON_DEPTH = 64
"""Deepest nesting a request document may have (a policy bundle is 5 levels deep)."""


def json_problem(document: object, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why `document` cannot be taken (nesting deeper than `limit`, a lone surrogate that no answer
    or database could encode), or None. Walked without recursion."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                return "the request body holds invalid Unicode (a lone surrogate escape such as \\ud800)"
        elif isinstance(value, (dict, list)):
            if depth > limit:
                return f"the request body nests deeper than {limit} levels"
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((child, depth + 1) for child in value.values())
            else:
                stack.extend((child, depth + 1) for child in value)
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Throttled(Exception):
    """Too many failed logins: answer 429 and ask the client to come back after `retry_after` seconds."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(scope)
        self.retry_after = retry_after
        self.scope = scope
        """`client` or `user`: which limit was reached."""


class LoginThrottle:
    """Counts failed logins per client address and per user; thread-safe, bounded memory."""

    def __init__(self, client_limit: int = CLIENT_FAILURE_LIMIT, user_limit: int = USER_FAILURE_LIMIT,
                 window: float = FAILURE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.client_limit = client_limit
        self.user_limit = user_limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._by_client: OrderedDict[str, deque[float]] = OrderedDict()
        self._by_user: OrderedDict[str, deque[float]] = OrderedDict()
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()

    def check(self, client: str, user: str | None) -> None:
        """Throttled when `client` (or, for a client not recently logged in as `user`, that user) is over its limit."""
        now = self._clock()
        with self._lock:
            wait = self._wait(self._by_client, client, self.client_limit, now)
            if wait:
                raise Throttled(wait, "client")
            if user is not None and not self._is_trusted(client, user, now):
                wait = self._wait(self._by_user, user, self.user_limit, now)
                if wait:
                    raise Throttled(wait, "user")

    def failed(self, client: str, user: str | None) -> None:
        now = self._clock()
        with self._lock:
            self._record(self._by_client, client, now)
            if user is not None:
                self._record(self._by_user, user, now)

    def succeeded(self, client: str, user: str) -> None:
        with self._lock:
            self._trusted[(client, user)] = self._clock()
            self._trusted.move_to_end((client, user))
            while len(self._trusted) > TRACKED_KEYS:
                self._trusted.popitem(last=False)

    def _is_trusted(self, client: str, user: str, now: float) -> bool:
        seen = self._trusted.get((client, user))
        return seen is not None and now - seen < TRUSTED_SECONDS

    def _prune(self, failures: deque[float], now: float) -> None:
        while failures and now - failures[0] >= self.window:
            failures.popleft()

    def _wait(self, table: OrderedDict[str, deque[float]], key: str, limit: int, now: float) -> int:
        failures = table.get(key)
        if failures is None:
            return 0
        self._prune(failures, now)
        if len(failures) < limit:
            return 0
        # The window reopens when the oldest counted failure ages out.
        return max(1, math.ceil(failures[len(failures) - limit] + self.window - now))

    def _record(self, table: OrderedDict[str, deque[float]], key: str, now: float) -> None:
        failures = table.get(key)
        if failures is None:
            failures = table[key] = deque()
        table.move_to_end(key)
        self._prune(failures, now)
        failures.append(now)
        while len(failures) > max(self.client_limit, self.user_limit):
            failures.popleft()
        while len(table) > TRACKED_KEYS:
            table.popitem(last=False)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers and no draining of refused bodies.

    - `request_timeout` seconds after the connection opens, or after the previous answer, the
      request headers must be complete, else the connection is closed (a slow or partial header,
      or an idle connection that sent a few bytes and stopped, which cancels uvicorn's keep-alive timer).
    - When the answer went out before the client finished sending its body (an unauthenticated or
      oversized upload), the connection is closed instead of receiving and discarding the rest.
    """

    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:  # the rest of a body we refused: do not receive it
            self._close()
            return
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.request_timeout, self._header_deadline, self.cycle)

    def _header_deadline(self, cycle_when_armed: object) -> None:
        self._header_timer = None
        # A new request (a new cycle) since arming means its headers arrived in time.
        if self.cycle is cycle_when_armed and not self.transport.is_closing():
            self._close()

    def _close(self) -> None:
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


def guarded_protocol(request_timeout: float) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn instantiates per connection, with this server's header deadline."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"request_timeout": request_timeout})
