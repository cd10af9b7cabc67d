"""Notification endpoints, deliveries and the webhook test (docs/notifications.md).

- `/v2/notifications/endpoints[/{endpoint}/configurations[/{configuration_id}]]` mirrors Anchore
  Enterprise's notification endpoint configurations (GET/POST on the collection; GET/PUT/DELETE on
  one), per account, for the endpoints webhook, slack, teams, jira, github and email; `.../test`
  sends a test notification to one configuration.
- `POST /v1|v2/system/webhooks/{notification_type}/test` is anchore-engine's webhook test: a test
  notification of that type to every endpoint that takes it.
- `GET /v2/notifications/deliveries` lists the account's deliveries and their state (ci-gate's own).

An endpoint added over the API may reach only the hosts `serve --allow-notify-host` allows (and
those of the operator's `--notifications-config`): refused with 400 when saved, and again when sent.

Secrets (signing secret, passwords, tokens, Slack and Teams URLs) are accepted, never returned.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from ci_gate.notify import endpoints, outbox
from ci_gate.notify.hosts import HostNotAllowed
from ci_gate.notify.senders import Delivery, Refused, RetryLater, send
from ci_gate.server.routing import Call
from ci_gate.server.service import ApiError, Service
from ci_gate.server.store import EVENT_TYPES, now_text


def _kind(call: Call) -> str:
    kind = call.path_params["endpoint"]
    if kind not in endpoints.KINDS:
        raise ApiError(404, f"no notification endpoint {kind[:40]!r}; endpoints: {', '.join(endpoints.KINDS)}")
    return kind


def _list_kinds(call: Call) -> Any:
    configured = {e.kind for e in call.service.dispatcher.endpoints(call.service.store)}
    return [{"name": kind, "enabled": kind in configured} for kind in endpoints.KINDS]


def _list(call: Call) -> Any:
    kind = _kind(call)
    return [e.public() for e in endpoints.list_endpoints(call.service.store, call.service.credentials, kind)]


def _one(call: Call) -> endpoints.Endpoint:
    found = endpoints.list_endpoints(call.service.store, call.service.credentials, _kind(call),
                                     call.path_params["configuration_id"])
    if not found:
        raise ApiError(404, "notification endpoint configuration not found")
    return found[0]


def _get(call: Call) -> Any:
    return _one(call).public()


def _save(call: Call, previous: endpoints.Endpoint | None) -> Any:
    try:
        endpoint = endpoints.parse_endpoint(_kind(call), call.json(), previous.endpoint_id if previous else None,
                                            previous)
        call.service.dispatcher.check_host(endpoint)
    except (endpoints.EndpointError, HostNotAllowed) as error:
        raise ApiError(400, str(error)) from None
    endpoints.save_endpoint(call.service.store, call.service.credentials, endpoint, now_text())
    return endpoint.public()


def _post(call: Call) -> Any:
    return _save(call, None)


def _put(call: Call) -> Any:
    return _save(call, _one(call))


def _delete(call: Call) -> Any:
    if not endpoints.delete_endpoint(call.service.store, _kind(call), call.path_params["configuration_id"]):
        raise ApiError(404, "notification endpoint configuration not found")
    return Response(status_code=204)


def _test_event(notification_type: str, account: str) -> dict[str, Any]:
    """A made-up event of the type, plainly marked as a test."""
    tag = "docker.io/library/ci-gate-test:latest"
    digest = "sha256:" + "0" * 64
    samples: dict[str, dict[str, Any]] = {
        "tag_update": {"last_eval": [digest], "curr_eval": ["sha256:" + "1" * 64]},
        "policy_eval": {"last_eval": {"image_digest": digest, "status": "pass", "policy_id": "test"},
                        "curr_eval": {"image_digest": digest, "status": "fail", "policy_id": "test"}},
        "vuln_update": {"imageDigest": digest, "diff_vulnerability_result": {"added": [], "updated": [],
                                                                            "removed": []}},
        "analysis_update": {"image_digest": digest, "analysis_status": "analyzed"},
    }
    details = samples[notification_type]
    event_type, level, message = EVENT_TYPES[notification_type]
    return {"id": f"test-{uuid.uuid4().hex}", "type": event_type, "level": level, "message": f"TEST: {message}",
            "notification_type": notification_type, "subscription_key": tag, "details": {**details, "test": True},
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def _send_test(call: Call, targets: list[endpoints.Endpoint], notification_type: str) -> list[dict[str, Any]]:
    account = call.principal.account if call.principal is not None else "admin"
    event = _test_event(notification_type, account)
    results = []
    for endpoint in targets:
        delivery = Delivery(outbox.idempotency_key(event["id"], endpoint.endpoint_id), event, account, 1, 1,
                            call.service.dispatcher.hosts_for(endpoint))
        result: dict[str, Any] = {"endpoint": endpoint.kind, "id": endpoint.endpoint_id, "name": endpoint.name}
        try:
            sent = send(endpoint, delivery)
            result.update(delivered=True, status=sent.status)
        except (RetryLater, Refused) as error:
            result.update(delivered=False, status=error.status, error=str(error))
        results.append(result)
    return results


def _test_configuration(call: Call) -> Any:
    endpoint = _one(call)
    return _send_test(call, [endpoint], call.query.get("notification_type") or endpoint.notification_types[0])


def _test_webhook(call: Call) -> Any:
    """anchore-engine's `POST /system/webhooks/{notification_type}/test`."""
    notification_type = call.path_params["notification_type"]
    if notification_type not in endpoints.NOTIFICATION_TYPES:
        raise ApiError(400, f"notification type must be one of {', '.join(endpoints.NOTIFICATION_TYPES)}")
    targets = [e for e in call.service.dispatcher.endpoints(call.service.store)
               if e.enabled and notification_type in e.notification_types]
    if not targets:
        raise ApiError(400, f"no notification endpoint takes {notification_type}: configure `webhooks` "
                            "(serve --notifications-config) or add one under /v2/notifications/endpoints")
    return _send_test(call, targets, notification_type)


def _deliveries(call: Call) -> Any:
    state = call.query.get("state")
    if state and state not in outbox.STATES:
        raise ApiError(400, f"state must be one of {', '.join(outbox.STATES)}")
    limit = call.query.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise ApiError(400, "limit must be an integer from 1 to 1000")
    return outbox.list_deliveries(call.service.store, state, call.query.get("notification_type"), int(limit))


def routes(service: Service, route: Any) -> list[Route]:
    base = "/v2/notifications/endpoints"
    one = f"{base}/{{endpoint}}/configurations/{{configuration_id}}"
    out = [
        route(base, _list_kinds, ["GET"], service),
        route(f"{base}/{{endpoint}}/configurations", _list, ["GET"], service),
        route(f"{base}/{{endpoint}}/configurations", _post, ["POST"], service),
        route(one, _get, ["GET"], service),
        route(one, _put, ["PUT"], service),
        route(one, _delete, ["DELETE"], service),
        route(f"{one}/test", _test_configuration, ["POST"], service),
        route("/v2/notifications/deliveries", _deliveries, ["GET"], service),
    ]
    for prefix in ("/v1", "/v2"):
        out.append(route(f"{prefix}/system/webhooks/{{notification_type}}/test", _test_webhook, ["POST"], service))
    return out
