"""The project's one HTTP layer: sessions with TLS verification, timeouts, retries and redaction.

Every network call in ci-gate (registries, the Anchore API, GitHub and GitLab publishers) goes
through this module so the same rules hold everywhere:

- TLS verification is on; `ca_bundle` adds a private CA (air-gapped registries, Anchore on-prem).
- Every request has a timeout (connect and read); there is no "wait forever".
- Transient failures are retried with exponential backoff (tenacity): connection errors, timeouts of
  idempotent requests, and responses 429/500/502/503/504. A `Retry-After` header (seconds or an
  HTTP date) is honoured, capped so a hostile server cannot park the build.
- Secrets never leave: sessions and auth objects have redacting reprs, URLs are logged without
  user info or token-like query parameters, and `HttpError` messages are built from redacted parts
  only (never from a requests exception's text, which may echo a URL with a token in it);
  urllib3's own DEBUG request lines pass through `RedactingFilter`.

The API is small on purpose:

    session = new_session(ca_bundle=None)
    response = send(session, "GET", url, timeout=30, headers={...}, stream=True)
    # raises HttpError(kind="timeout"|"connection"|"tls"|"invalid") when no response came back;
    # a response with any status code is returned (after retries for 429/5xx) for the caller to judge.

Callers turn `HttpError` and bad statuses into their own stage's error type with a fix hint.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import requests.auth
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt

from ci_gate import __version__
from ci_gate.secrets.urls import masked_webhook_path

__all__ = [
    "DEFAULT_RETRY",
    "Backoff",
    "HttpError",
    "RedactingFilter",
    "RetryPolicy",
    "Session",
    "TokenAuth",
    "host_of",
    "new_session",
    "redact_headers",
    "redact_url",
    "retry_after_seconds",
    "send",
]

logger = logging.getLogger("ci_gate.http")

USER_AGENT = f"ci-gate/{__version__}"

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

# Header and query-parameter names whose values are credentials.
_SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "private-token", "job-token",
    "x-registry-auth", "x-auth-token", "x-api-key",
})
_SECRET_QUERY = re.compile(r"(token|secret|password|passwd|key|signature|sig|credential|auth)", re.I)
REDACTED = "***"
_SECRET_IN_TEXT = re.compile(
    r"((?:[?&;]|\b)[\w.-]*(?:token|secret|password|passwd|signature|sig|credential)[\w.-]*=)[^&\s\"']+", re.I)
_AUTHORIZATION_IN_TEXT = re.compile(r"((?:authorization|private-token|job-token)['\"]?\s*[:=]\s*['\"]?)[^'\",}]+",
                                    re.I)


class RedactingFilter(logging.Filter):
    """Rewrites log records so token-like query values and Authorization values never reach a log.

    Installed on urllib3's loggers, which log request lines (with query strings) at DEBUG level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _AUTHORIZATION_IN_TEXT.sub(rf"\1{REDACTED}", _SECRET_IN_TEXT.sub(rf"\1{REDACTED}", message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "ci_gate.http"):
    logging.getLogger(_name).addFilter(RedactingFilter())


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently something is tried again: exponential backoff, or the server's
    Retry-After within a cap. A request's `RetryPolicy` and a publish's `RetryBudget` are each one."""

    attempts: int = 4
    """Total tries, the first one included."""
    backoff_initial: float = 0.5
    """Seconds before the second try; doubles each time."""
    backoff_max: float = 8.0
    """Longest pause between two tries from backoff alone."""
    retry_after_max: float = 60.0
    """Longest pause a server's Retry-After may ask for; longer requests are clamped to this."""

    def pause(self, attempt_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait after try `attempt_number` (1 = the first): the server's `retry_after` clamped to
        0 … retry_after_max when it gave one, else the backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        return min(self.backoff_initial * (2 ** (attempt_number - 1)), self.backoff_max)


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How often and how patiently a request is retried."""

    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    """Response codes that mean "try again later"."""


DEFAULT_RETRY = RetryPolicy()


class HttpError(Exception):
    """No usable response came back: timeout, refused connection, TLS failure or a malformed URL.

    `str()` is one redacted line naming the method, host and what happened; safe to show users.
    """

    def __init__(self, kind: str, method: str, url: str, detail: str, timeout: float | None = None):
        self.kind = kind
        """timeout | connection | tls | invalid | redirects"""
        self.method = method
        self.url = redact_url(url)
        self.host = host_of(url)
        self.detail = detail
        self.timeout = timeout
        super().__init__(f"{method} {self.url}: {detail}")


class Session(requests.Session):
    """A requests Session whose repr shows no headers or credentials."""

    def __repr__(self) -> str:
        return f"<ci_gate.http.Session verify={'custom CA' if isinstance(self.verify, str) else self.verify}>"


class TokenAuth(requests.auth.AuthBase):
    """`Authorization: <scheme> <token>` on every request; the token never shows in a repr."""

    def __init__(self, token: str, scheme: str = "Bearer"):
        self._token = token
        self.scheme = scheme

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"{self.scheme} {self._token}"
        return request

    def __repr__(self) -> str:
        return f"<TokenAuth {self.scheme} {REDACTED}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenAuth) and (self.scheme, self._token) == (other.scheme, other._token)

    def __hash__(self) -> int:
        return hash((self.scheme, self._token))


def new_session(ca_bundle: str | None = None, user_agent: str = USER_AGENT) -> Session:
    """A session with TLS verification on (against `ca_bundle` when given) and our User-Agent.

    Proxies from the environment (HTTPS_PROXY, NO_PROXY) are honoured as requests does.
    """
    session = Session()
    session.verify = ca_bundle if ca_bundle else True
    session.headers["User-Agent"] = user_agent
    return session


MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    retry: RetryPolicy = DEFAULT_RETRY,
    redirect_check: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request with retries; return the last response whatever its status.

    `timeout` applies to connecting and to each read (seconds). Keyword arguments go to
    `session.request` (headers, params, data, json, auth, stream, allow_redirects). A response that
    is retried is closed first, so streamed bodies never leak connections.

    With `redirect_check`, redirects are followed here, hop by hop: the check sees each target URL
    first (and raises to refuse it), `auth` goes only to the origin (scheme, host, port) of `url`,
    never where a redirect leads, and more than MAX_REDIRECTS hops is an error of kind `redirects`.

    Raises HttpError when no response came back after all tries.
    """
    if redirect_check is None:
        return _send_with_retries(session, method, url, timeout=timeout, retry=retry, **kwargs)
    method = method.upper()
    auth = kwargs.pop("auth", None)
    kwargs["allow_redirects"] = False
    first_origin = _origin(url)
    for _hop in range(MAX_REDIRECTS + 1):
        response = _send_with_retries(session, method, url, timeout=timeout, retry=retry,
                                      auth=auth if _origin(url) == first_origin else None, **kwargs)
        location = response.headers.get("Location")
        if response.status_code not in REDIRECT_STATUSES or not location:
            return response
        response.close()
        target = urljoin(url, location)
        if urlsplit(target).scheme not in ("http", "https") or not host_of(target):
            raise HttpError("invalid", method, url, "redirected to a URL that is not http(s)", timeout)
        redirect_check(target)
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method = "GET"
            kwargs.pop("data", None)
            kwargs.pop("json", None)
        url = target
    raise HttpError("redirects", method, url, f"more than {MAX_REDIRECTS} redirects", timeout)


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit: what a credential is for."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", url, None)
    return (parts.scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(parts.scheme))


def _send_with_retries(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    retry: RetryPolicy = DEFAULT_RETRY,
    **kwargs: Any,
) -> requests.Response:
    method = method.upper()
    idempotent = method in IDEMPOTENT_METHODS
    retry_exceptions: tuple[type[BaseException], ...] = (requests.ConnectionError,)
    if idempotent:
        retry_exceptions = (requests.ConnectionError, requests.Timeout)

    def should_retry_response(response: requests.Response) -> bool:
        return response.status_code in retry.retry_statuses

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        server_wait = None
        if outcome is not None and not outcome.failed:
            server_wait = retry_after_seconds(outcome.result().headers.get("Retry-After"))
        return retry.pause(state.attempt_number, server_wait)

    # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override a session's own CA bundle unless
    # verify is passed per request (psf/requests#3829); the session's choice must win.
    kwargs.setdefault("verify", session.verify)

    def attempt() -> requests.Response:
        response = session.request(method, url, timeout=timeout, **kwargs)
        logger.debug("%s %s -> %s", method, redact_url(url), response.status_code)
        return response

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        what: object = "?"
        if outcome is not None and outcome.failed:
            what = type(outcome.exception()).__name__
        elif outcome is not None:
            response = outcome.result()
            what = response.status_code
            response.close()  # a retried body is never read; give its connection back
        logger.info("retrying %s %s after %s (try %d of %d)", method, redact_url(url), what,
                    state.attempt_number, retry.attempts)

    retrying = Retrying(
        stop=stop_after_attempt(max(retry.attempts, 1)),
        wait=wait,
        retry=retry_if_exception_type(retry_exceptions) | retry_if_result(should_retry_response),
        before_sleep=before_sleep,
        # After the last try: re-raise the exception, or hand back the last (retryable) response.
        retry_error_callback=_last_outcome,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except requests.TooManyRedirects:
        raise HttpError("redirects", method, url, "too many redirects", timeout) from None
    except requests.exceptions.SSLError:
        raise HttpError("tls", method, url, "TLS verification failed", timeout) from None
    except requests.Timeout:
        raise HttpError("timeout", method, url, f"no answer within {timeout:g}s", timeout) from None
    except requests.ConnectionError as error:
        reason = _connection_reason(error)
        raise HttpError("connection", method, url, f"could not connect ({reason})", timeout) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema, ValueError):
        raise HttpError("invalid", method, url, "invalid URL", timeout) from None
    except OSError as error:
        # requests raises a bare OSError when the CA bundle path does not exist.
        raise HttpError("tls", method, url, f"cannot use the CA bundle ({error.strerror or 'unreadable'})",
                        timeout) from None


def _last_outcome(state: RetryCallState) -> requests.Response:
    outcome = state.outcome
    assert outcome is not None
    response: requests.Response = outcome.result()
    return response


_CONNECTION_REASONS = (
    ("refused", "connection refused"),
    ("name or service not known", "unknown host"),
    ("nodename nor servname", "unknown host"),
    ("temporary failure in name", "DNS failure"),
    ("reset by peer", "connection reset"),
    ("remote end closed", "connection closed"),
    ("network is unreachable", "network unreachable"),
    ("no route", "no route to host"),
)


def _connection_reason(error: requests.ConnectionError) -> str:
    text = str(error).lower()
    for needle, reason in _CONNECTION_REASONS:
        if needle in text:
            return reason
    return "connection error"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def host_of(url: str) -> str:
    """host[:port] of a URL, without user info."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "?"
    return netloc.rsplit("@", 1)[-1]


def redact_url(url: str) -> str:
    """The URL without user info and with token-like query values replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    path = masked_webhook_path((parts.hostname or "").lower().rstrip("."), parts.path)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(name, REDACTED if _SECRET_QUERY.search(name) else value) for name, value in pairs], safe="*:/")
    return urlunsplit((parts.scheme, netloc, parts.path if path is None else path, query, ""))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of the headers with credential values replaced by ***."""
    return {name: (REDACTED if name.lower() in _SECRET_HEADERS else value) for name, value in headers.items()}
