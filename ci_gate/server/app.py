"""`ci-gate serve`: the subset of Anchore's v2 (and v1) API that CI clients use, on the embedded engine.

Routes parse, authenticate and shape; `Service` does the work against the store, the worker pool
and the policy engine. Bodies follow reference/anchore.md §1-2 exactly (v2 snake_case objects,
v1 camelCase arrays, both error shapes), so the Anchore client and anchorectl work unchanged. What
anchore-engine's clients need beyond that (swagger, tag lookups, registries, subscriptions, events,
system, metadata) lives in the `routes_*` modules.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ci_gate import __version__
from ci_gate.errors import UsageError
from ci_gate.server import admission, check_history, shapes
from ci_gate.server.config import ServerConfig
from ci_gate.server.limits import guarded_protocol
from ci_gate.server.routing import Call, error_response, route
from ci_gate.server.service import VULNERABILITY_TYPES, Service

LOG = logging.getLogger("ci_gate.server")
SHUTDOWN_GRACE_SECONDS = 5
"""How long open connections may finish after SIGTERM before serve closes them."""


def _post_image(call: Call) -> Any:
    from ci_gate.server.routes_events import subscribe_added_image

    record = call.service.add_image(call.json(), call.flag("force"))
    subscribe_added_image(call)
    return [shapes.image_v1(record)] if call.v1 else shapes.image_v2(record)


def _get_image(call: Call) -> Any:
    record = call.service.image(call.path_params["digest"])
    return [shapes.image_v1(record)] if call.v1 else shapes.image_v2(record)


def _check(call: Call) -> Any:
    from ci_gate.server.records import record_evaluation

    evaluation, analysis, record, row, tag = call.service.evaluate(
        call.path_params["digest"], call.query.get("tag"), call.query.get("policyId" if call.v1 else "policy_id"))
    record_evaluation(call.service.store, tag, row.policy_id, record.digest,  # interactive: not kept (the engine)
                      "fail" if evaluation.final_action.lower() == "stop" else "pass",
                      None if call.flag("interactive") else evaluation)
    # history=true: every stored evaluation (the fresh one first), as the engine's catalog answers
    evaluations = [evaluation]
    if call.flag("history"):
        evaluations += [e for e in check_history.stored(call.service.store, tag, row.policy_id, record.digest)
                        if e.final_action.upper() != evaluation.final_action.upper()]
    detail = call.flag("detail", True)
    if call.v1:
        entries = [entry for e in evaluations
                   for entry in shapes.check_v1(e, analysis, record, row, tag, detail)[0][record.digest][tag]]
        return [{record.digest: {tag: entries}}]
    from ci_gate.reports.evaluation_json import render_evaluation_json

    documents = [render_evaluation_json(e, analysis) for e in evaluations]
    merged = {**documents[0], "evaluations": [item for document in documents for item in document["evaluations"]]}
    return shapes.check_v2(merged, record, row, detail)


def _vulnerability_types(call: Call) -> Any:
    call.service.image(call.path_params["digest"])
    return list(VULNERABILITY_TYPES)


def _vulnerabilities(call: Call) -> Any:
    digest = call.path_params["digest"]
    vulnerability_type = call.path_params.get("vtype") or call.query.get("type") or "all"
    items = call.service.vulnerabilities(digest, vulnerability_type, not call.v1)
    if call.v1:
        return shapes.vulnerabilities_v1(digest, vulnerability_type, items)
    return shapes.vulnerabilities_v2(digest, vulnerability_type, items)


def _content_types(call: Call) -> Any:
    return call.service.content_types(call.path_params["digest"])


def _content(call: Call) -> Any:
    digest, content_type = call.path_params["digest"], call.path_params["ctype"]
    items = call.service.content(digest, content_type, not call.v1)
    key = "imageDigest" if call.v1 else "image_digest"
    return {key: digest, "content_type": content_type, "content": items}


def _delete_policy(call: Call) -> Any:
    call.service.delete_policy(call.path_params["policy_id"])
    return Response(status_code=200)


def _ping(call: Call) -> Any:
    """v1's ping: the API version prefix as a JSON string."""
    return "v1" if call.v1 else "v2"


def _health(call: Call) -> Any:
    return Response(status_code=200)


def _status(call: Call) -> Any:
    return call.service.status()


def create_app(config: ServerConfig) -> Starlette:
    """The ASGI application; workers start and stop with its lifespan."""
    from ci_gate.server import (
        routes_accounts,
        routes_events,
        routes_images,
        routes_notifications,
        routes_policies,
        routes_registries,
        routes_system,
        tag_watch,
        vuln_watch,
    )

    service = Service(config)
    service.background.append(tag_watch.watcher_for(service))
    service.background.append(vuln_watch.watcher_for(service))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    routes = [
        route("/health", _health, ["GET"], service, public=True, inline=True),
        route("/version", routes_system.version_v2, ["GET"], service, public=True),
        route("/status", _status, ["GET"], service),
    ]
    for version in ("v1", "v2") if config.serves_api else ():  # role worker: health, version and status only
        prefix = f"/{version}"
        routes += [
            route(f"{prefix}/", _ping, ["GET"], service, public=True),
            route(f"{prefix}/version", routes_system.version_v1 if version == "v1" else routes_system.version_v2,
                   ["GET"], service),
            route(f"{prefix}/status", _status, ["GET"], service),
            route(f"{prefix}/images", _post_image, ["POST"], service, registry=True),
            route(f"{prefix}/images", routes_images.list_images, ["GET"], service),
            route(f"{prefix}/images/{{digest}}", _get_image, ["GET"], service, inline=True),
            route(f"{prefix}/images/{{digest}}", routes_images.delete_image, ["DELETE"], service),
            route(f"{prefix}/images/{{digest}}/check", _check, ["GET"], service),
            route(f"{prefix}/images/{{digest}}/vuln", _vulnerability_types, ["GET"], service),
            route(f"{prefix}/images/{{digest}}/vuln/{{vtype}}", _vulnerabilities, ["GET"], service),
            route(f"{prefix}/images/{{digest}}/content", _content_types, ["GET"], service),
            route(f"{prefix}/images/{{digest}}/content/{{ctype}}", _content, ["GET"], service),
            route(f"{prefix}/policies", routes_policies.list_policies, ["GET"], service),
            route(f"{prefix}/policies", routes_policies.add_policy, ["POST"], service),
            route(f"{prefix}/policies/{{policy_id}}", routes_policies.get_policy, ["GET"], service),
            route(f"{prefix}/policies/{{policy_id}}", routes_policies.update_policy, ["PUT"], service),
            route(f"{prefix}/policies/{{policy_id}}", _delete_policy, ["DELETE"], service),
        ]
    if not config.serves_api:
        return _application(routes, lifespan, service)
    routes.append(route("/v2/images/{digest}/vulnerabilities", _vulnerabilities, ["GET"], service))
    routes += routes_images.routes(service, route, {
        "get": _get_image, "check": _check, "vulnerability_types": _vulnerability_types,
        "vulnerabilities": _vulnerabilities, "content_types": _content_types, "content": _content})
    routes += routes_policies.routes(service, route) + routes_registries.routes(service, route)
    routes += routes_accounts.routes(service, route)
    routes += routes_notifications.routes(service, route)
    routes += routes_events.routes(service, route) + routes_system.routes(service, route, routes)
    routes += admission.routes(service)  # public, TLS-only: the API server calls webhooks without credentials
    routes += __import__("ci_gate.server.ui", fromlist=["routes"]).routes(service, route)  # the dashboard, /ui/
    return _application(routes, lifespan, service)


def _application(routes: list[Any], lifespan: Any, service: Service) -> Starlette:
    async def http_error(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        message = {404: f"no such endpoint: {request.method} {request.url.path}",
                   405: f"method {request.method} not allowed on {request.url.path}"}.get(status, str(error))
        return error_response(status, message, request.url.path.startswith("/v1"))

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app


def serve(config: ServerConfig, host: str, port: int) -> None:
    """Run until interrupted."""
    import socket

    import uvicorn

    try:  # uvicorn would log a bind failure and exit 1; say it in one line with exit 2 instead
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port "
                         "or --host") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    tls = config.tls_cert is not None
    LOG.info("ci-gate serve %s on %s://%s:%d (role %s, database %s, data dir %s, %d workers)", __version__,
             "https" if tls else "http", host, port, config.role, config.database.redacted, config.data_dir,
             config.workers if config.runs_work else 0)
    # Idle keep-alive connections close after 5 s (uvicorn); unfinished request headers after
    # request_timeout (GuardedH11Protocol); past 512 connections new requests get 503. On SIGTERM,
    # open connections get SHUTDOWN_GRACE_SECONDS: a TLS client that never answers close_notify would
    # otherwise hold the process for asyncio's 30 s, a pod's whole default termination grace period.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                http=guarded_protocol(config.request_timeout), timeout_keep_alive=5, limit_concurrency=512,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
                h11_max_incomplete_event_size=64 * 1024,
                ssl_certfile=str(config.tls_cert) if tls else None, ssl_keyfile=str(config.tls_key) if tls else None)
