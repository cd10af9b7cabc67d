"""How a route runs: authenticate on the headers, read the body under limits, run the handler on
the event loop or in a thread, and answer errors in the v1 or v2 shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ci_gate.database import DatabaseUnavailable
from ci_gate.database_url import SQLITE
from ci_gate.server import shapes
from ci_gate.server.auth import AuthFailure, Principal
from ci_gate.server.limits import (
    MAX_BODY_BYTES,
    BodyError,
    Throttled,
    json_problem,
    read_body,
)
from ci_gate.server.registry_work import CALLERS as REGISTRY_CALLERS
from ci_gate.server.service import CURRENT_ACCOUNT, LOG, ApiError, Service
from ci_gate.server.store import ACCOUNT

Handler = Callable[["Call"], Any]


@dataclass(frozen=True)
class Call:
    """One request, read and authenticated, as the handlers see it."""

    service: Service
    """The server's behaviour."""
    path_params: Mapping[str, str]
    """Path parameters by name."""
    query: Mapping[str, str]
    """Query parameters (last value wins)."""
    body: bytes
    """The raw request body."""
    content_type: str
    """The request's Content-Type."""
    v1: bool
    """True under /v1: v1 shapes."""
    principal: Principal | None = None
    """Who is calling (None on public routes)."""

    def json(self) -> Any:
        if self.content_type and "json" not in self.content_type and "yaml" not in self.content_type:
            raise ApiError(415, f"unsupported media type {self.content_type}; send application/json")
        try:
            document = json.loads(self.body or b"null")
        except (ValueError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON") from None
        problem = json_problem(document)
        if problem:
            raise ApiError(400, problem)
        return document

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.query.get(name)
        return default if value is None else value.lower() in ("true", "1", "yes")


def error_response(status: int, message: str, v1: bool, detail: Mapping[str, Any] | None = None,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    message = message.encode("utf-8", "replace").decode("utf-8")  # a path or value may carry a lone surrogate
    body = shapes.error_v1(status, message, detail) if v1 else shapes.error_v2(status, message, detail)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def dispatch(service: Service, handler: Handler, principal: Principal | None, request: Request,
              body: bytes) -> Response:
    v1 = request.url.path.startswith("/v1")
    token = CURRENT_ACCOUNT.set(principal.account if principal is not None else ACCOUNT)
    try:
        service.store_for(CURRENT_ACCOUNT.get())
        call = Call(service=service, path_params=request.path_params, query=dict(request.query_params), body=body,
                    content_type=request.headers.get("content-type", "").split(";")[0].strip().lower(), v1=v1,
                    principal=principal)
        result = handler(call)
        return result if isinstance(result, Response) else JSONResponse(result)
    except ApiError as error:
        return error_response(error.status, error.message, v1, error.detail, error.headers)
    except DatabaseUnavailable as error:  # PostgreSQL restarting: the client retries, nothing crashed
        return error_response(error.status, error.message, v1, headers={"Retry-After": "5"})
    except Exception as error:  # a bug answers 500 in the documented shape, and is logged with its traceback
        LOG.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(error).__name__}", v1)
    finally:
        CURRENT_ACCOUNT.reset(token)


def route(path: str, handler: Handler, methods: list[str], service: Service, public: bool = False,
           inline: bool = False, registry: bool = False) -> Route:
    """`inline` handlers only read one small row, so they run on the event loop (status polls are
    the hot path); the others evaluate a policy or wait on a registry, so they run in threads.
    `registry` handlers (adds, which resolve a tag) run under a thread limit of their own, so a
    registry that hangs never holds the threads that answer everything else."""
    async def endpoint(request: Request) -> Response:
        v1 = request.url.path.startswith("/v1")
        principal: Principal | None = None
        body = b""
        if not public:  # who is calling is settled on the headers alone, before a byte of the body is read
            try:
                client = request.client.host if request.client else "unknown"
                principal = service.gatekeeper.admit(client, request.headers)
            except Throttled as throttled:
                who = "client address" if throttled.scope == "client" else "user"
                return error_response(429, f"Too many failed logins for this {who}; retry after "
                                      f"{throttled.retry_after} s", v1, {"retry_after_seconds": throttled.retry_after},
                              {"Retry-After": str(throttled.retry_after)})
            except AuthFailure as failure:
                headers = {"WWW-Authenticate": 'Basic realm="ci-gate"'} if failure.status == 401 else None
                return error_response(failure.status, failure.message, v1, failure.detail, headers)
            except DatabaseUnavailable as error:  # the login needs the database (users, API keys)
                return error_response(error.status, error.message, v1, headers={"Retry-After": "5"})
            try:
                body = await read_body(request, MAX_BODY_BYTES, service.config.request_timeout)
            except BodyError as error:
                return error_response(error.status, error.message, v1, headers={"Connection": "close"})
        if inline and service.config.database.dialect == SQLITE:  # a network database never on the event loop
            return dispatch(service, handler, principal, request, body)
        if registry:
            if service.registry_callers is None:  # created on the event loop, at first use
                service.registry_callers = anyio.CapacityLimiter(REGISTRY_CALLERS)
            return await anyio.to_thread.run_sync(dispatch, service, handler, principal, request, body,
                                                  limiter=service.registry_callers)
        return await run_in_threadpool(dispatch, service, handler, principal, request, body)

    return Route(path, endpoint, methods=methods)

