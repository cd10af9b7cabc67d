"""Version, swagger, system status, feeds and identity endpoints, as anchore-engine (v1) and Enterprise (v2) answer.

* `GET /swagger.json`, `/v1/swagger.json`: a Swagger 2.0 document listing the paths this server
  answers, `info.version` 0.1.20 (anchore-engine 1.x's API version). anchore-cli reads it to choose
  between `?fulltag=` (>= 0.1.6) and a tag in a GET body; without it, it sends the body.
* `GET /v1/version`: `api` is `{}` exactly as anchore-engine answers (the admission controller tells
  v1 from v2 by that); `/v2/version` and `/version` report `api.version` "2".
* `GET /v1/system` lists ci-gate's parts under the engine's service names, so `system status` and
  `system wait` work; `analyzer` is down when this process runs no workers (`--workers 0`).
* `GET /v1/system/feeds`: the vulnerability store as the `vulnerabilities` feed, one group per
  ecosystem, `last_sync` the store's last import; no store means no sync yet (`system wait`
  keeps waiting: checks could not evaluate vulnerabilities).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from ci_gate import __version__
from ci_gate.server.routing import Call
from ci_gate.server.service import Service
from ci_gate.server.store import ACCOUNT

SWAGGER_VERSIONS = {"v1": "0.1.20", "v2": "2.0.0"}
"""info.version per API: anchore-engine 1.x's external API, and Enterprise's v2."""
ENGINE_SERVICES = ("apiext", "catalog", "policy_engine", "simplequeue", "analyzer")
HOST_ID = "ci-gate-serve"


def swagger(registered: list[Route], version: str) -> Any:
    """The handler for one API's swagger document, built from the routes registered under it."""
    def handler(call: Call) -> Any:
        prefix = f"/{version}"
        paths: dict[str, dict[str, Any]] = {}
        for route in registered:
            if not route.path.startswith(prefix + "/") or route.path.endswith("swagger.json"):
                continue
            path = route.path[len(prefix):].replace(":path}", "}")
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                paths.setdefault(path, {})[method.lower()] = {
                    "operationId": f"{method.lower()}_{path.strip('/').replace('/', '_') or 'ping'}",
                    "responses": {"200": {"description": "success"}}}
        return {"swagger": "2.0",
                "info": {"title": "ci-gate serve (Anchore Engine API compatible)", "version": SWAGGER_VERSIONS[version],
                         "description": f"The subset of Anchore's {version} API that ci-gate serve answers "
                                        f"(ci-gate {__version__})."},
                "basePath": prefix, "schemes": ["http"], "consumes": ["application/json"],
                "produces": ["application/json"], "paths": dict(sorted(paths.items()))}
    return handler


def version_v1(call: Call) -> Any:
    return {"service": {"version": __version__}, "api": {}, "db": {"schema_version": "1"}}


def version_v2(call: Call) -> Any:
    return {"service": {"version": __version__, "name": "ci-gate serve"}, "api": {"version": "2"},
            "db": {"schema_version": "1"}}


def system(call: Call) -> Any:
    service = call.service
    analyser_up = service.config.workers > 0 and any(t.is_alive() for t in service.pool._threads)
    states = []
    for name in ENGINE_SERVICES:
        up = analyser_up if name == "analyzer" else True
        busy = service.pool.busy > 0 if name == "analyzer" else False
        detail: dict[str, Any] = {"up": up, "available": up, "busy": busy,
                                  "message": "all good" if up else "no analysis workers in this process (--workers 0)",
                                  "version": __version__, "db_version": "1", "detail": {}}
        states.append({"hostid": HOST_ID, "servicename": name, "base_url": None,
                       "status": up, "status_message": "available" if up else "unavailable",
                       "version": __version__, "service_detail": detail})
    return {"service_states": states}


def feeds(call: Call) -> Any:
    from ci_gate.errors import CiGateError
    from ci_gate.vulns.store import open_store

    feed: dict[str, Any] = {"name": "vulnerabilities", "enabled": True, "created_at": None, "updated_at": None,
                            "last_full_sync": None, "groups": []}
    try:
        with open_store(call.service.config.vuln_db) as store:
            status = store.status()
    except (CiGateError, OSError):
        return [feed]
    last_sync = status.updated_at or None
    feed.update(created_at=status.built_at or None, updated_at=last_sync, last_full_sync=last_sync)
    feed["groups"] = [{"name": ecosystem.lower(), "enabled": True, "created_at": status.built_at or None,
                       "updated_at": last_sync, "last_sync": last_sync, "record_count": count}
                      for ecosystem, count in status.ecosystems]
    return [feed]


def account(call: Call) -> Any:
    created = call.service.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"name": ACCOUNT, "email": None, "type": "admin", "state": "enabled", "created_at": created,
            "last_updated": created}


def user(call: Call) -> Any:
    """The one native user (API keys act as it too)."""
    created = call.service.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"username": "admin", "type": "native", "source": None, "created_at": created, "last_updated": created}


def routes(service: Service, route: Any, registered: list[Route]) -> list[Route]:
    out = [
        route("/swagger.json", swagger(registered, "v1"), ["GET"], service, public=True),
        route("/v1/swagger.json", swagger(registered, "v1"), ["GET"], service, public=True),
        route("/v2/swagger.json", swagger(registered, "v2"), ["GET"], service, public=True),
        route("/v1/system", system, ["GET"], service),
        route("/v1/system/feeds", feeds, ["GET"], service),
    ]
    for prefix in ("/v1", "/v2"):
        out += [route(f"{prefix}/account", account, ["GET"], service),
                route(f"{prefix}/user", user, ["GET"], service)]
    return out
