"""`/registries`: pull credentials and `--insecure` per registry, as anchore-cli `registry add|list|get|update|del`
manages them, and the pull options they give the workers.

anchore-engine's semantics (`controllers/registries.py`, `catalog_impl.py`): `POST` with `?validate=true`
(the default) logs in to the registry first and answers 406 when it cannot; a registry that exists
answers 500 "registry already exists in DB"; `PUT` needs the path and body names to agree (409).
Responses never carry the password. `registry_verify: false` (anchore-cli `--insecure`) lets ci-gate
speak plain HTTP to that registry (ci-gate has no "TLS without verification" mode). Adding a registry
does not add it to the server's pull allowlist (`--allow-registry`): any API caller may add one, so the
administrator's list still decides where the server may connect, validation included.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from starlette.routing import Route

from ci_gate.errors import CiGateError
from ci_gate.server import records
from ci_gate.server.records import RegistryRecord
from ci_gate.server.routing import Call
from ci_gate.server.service import ApiError, Service

LOG = logging.getLogger("ci_gate.server")

REGISTRY_TYPES = ("docker_v2", "awsecr")


def registry_body(record: RegistryRecord) -> dict[str, Any]:
    """anchore-engine's `make_response_registry`: no password."""
    return {"registry": record.registry, "userId": "admin", "registry_user": record.registry_user,
            "registry_verify": record.registry_verify, "registry_type": record.registry_type,
            "registry_name": record.registry_name, "created_at": record.created_at,
            "last_updated": record.last_updated}


def _request(call: Call) -> tuple[str, str, str, str, str, bool]:
    body = call.json()
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a RegistryConfigurationRequest object")
    registry = body.get("registry")
    if not isinstance(registry, str) or not registry:
        raise ApiError(500, "body does not contain registry key")
    if re.match(r".*/+$", registry):
        raise ApiError(409, "input registry name cannot end with trailing '/' characters")
    if re.match(r"^http[s]*://", registry):
        raise ApiError(409, "input registry name must start with a hostname/ip, without URI schema "
                            "(http://, https://)")
    user, password = body.get("registry_user"), body.get("registry_pass")
    if not isinstance(user, str) or not isinstance(password, str):
        raise ApiError(400, "registry_user and registry_pass are required strings")
    registry_type = body.get("registry_type") or "docker_v2"
    if registry_type not in REGISTRY_TYPES:
        raise ApiError(400, f"registry_type must be one of {', '.join(REGISTRY_TYPES)}")
    if registry_type == "awsecr" or "awsauto" in (user, password):
        raise ApiError(406, "'awsauto' is not enabled in service configuration (ci-gate serve has no ECR "
                            "credential refresh; add the registry as docker_v2 with a token)")
    verify = body.get("registry_verify", True)
    return registry, str(body.get("registry_name") or registry), registry_type, user, password, verify is not False


def _validate(service: Service, registry: str, user: str, password: str, verify: bool) -> None:
    """Log in to the registry with the given credentials (anchore-engine's ping_docker_registry)."""
    from ci_gate.sources.registry import RegistryClient, parse_reference

    host = registry.rstrip("*").split("/", 1)[0]
    options = replace(service.config.source, registry_username=user, registry_password=password, registry_host=host)
    if not verify:
        options = replace(options, insecure_registries=(*options.insecure_registries, host))
    client = None
    try:
        client = RegistryClient(parse_reference(f"{host}/ci-gate/validate"), options)
        client.ping()
        client.get("/v2/", what="login").close()
    except CiGateError as error:
        from ci_gate.server.registry_work import trusted_registry

        reason = str(error).replace("from --registry-username", "supplied")  # they came from this request
        if not trusted_registry(host, service.config.source):
            # A host nobody named: the same words whatever happened, so the API is no port scanner.
            LOG.info("cannot validate registry %s: %s", host[:200], reason)
            reason = (f"registry {host} could not be reached or refused the credentials; check the address, "
                      "or ask the operator to name it (ci-gate serve --allow-registry HOST)")
        raise ApiError(406, f"cannot ping supplied registry with supplied credentials - exception: {reason}") from None
    finally:
        if client is not None:
            client.close()


def _list(call: Call) -> Any:
    return [registry_body(r) for r in records.list_registries(call.service.store)]


def _get(call: Call) -> Any:
    found = records.list_registries(call.service.store, unquote(call.path_params["registry"]))
    if not found:
        raise ApiError(404, "registry not found in DB")
    return [registry_body(r) for r in found]


def _save(call: Call, registry: str, name: str, registry_type: str, user: str, password: str, verify: bool,
          create: bool) -> Any:
    """Validate (unless ?validate=false) and store; the engine's messages when the entry appeared or vanished."""
    if call.flag("validate", True):
        _validate(call.service, registry, user, password, verify)
    record = records.save_registry(call.service.store, call.service.credentials, registry, name, registry_type,
                                   user, password, verify, create=create)
    if record is None:
        raise ApiError(500, "registry already exists in DB") if create else \
            ApiError(404, "could not find existing registry to update")
    return [registry_body(record)]


def _add(call: Call) -> Any:
    registry, name, registry_type, user, password, verify = _request(call)
    if records.list_registries(call.service.store, registry):
        raise ApiError(500, "registry already exists in DB")
    return _save(call, registry, name, registry_type, user, password, verify, create=True)


def _update(call: Call) -> Any:
    path_registry = unquote(call.path_params["registry"])
    registry, name, registry_type, user, password, verify = _request(call)
    if registry != path_registry:
        raise ApiError(409, "registry name in path does not equal registry name in body")
    if not records.list_registries(call.service.store, registry):
        raise ApiError(404, "could not find existing registry to update")
    return _save(call, registry, name, registry_type, user, password, verify, create=False)


def _delete(call: Call) -> Any:
    if not records.delete_registry(call.service.store, unquote(call.path_params["registry"])):
        raise ApiError(404, "registry not found in DB")
    return True


def routes(service: Service, route: Any) -> list[Route]:
    out = []
    for prefix in ("/v1", "/v2"):
        out += [
            route(f"{prefix}/registries", _list, ["GET"], service),
            route(f"{prefix}/registries", _add, ["POST"], service, registry=True),
            route(f"{prefix}/registries/{{registry:path}}", _get, ["GET"], service),
            route(f"{prefix}/registries/{{registry:path}}", _update, ["PUT"], service, registry=True),
            route(f"{prefix}/registries/{{registry:path}}", _delete, ["DELETE"], service),
        ]
    return out
