"""`/subscriptions` and `/events` (anchore-cli `subscription list|activate|deactivate|del`, `event list|get|del`).

Subscriptions are created as anchore-engine creates them when an image is added: the four tag types,
`analysis_update` always active, `tag_update` active when the add asked for autosubscribe. Events are
recorded for analysis results (analysis_update), a tag that moves to another digest (tag_update), a
check whose result changed (policy_eval) and, after a vulnerability store import, changed matches of
subscribed tags (vuln_update, `vuln_watch.py`); the notifications sender delivers them.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from ci_gate.server import records
from ci_gate.server.routing import Call
from ci_gate.server.service import ApiError, Service, normalise_tag

EVENT_FILTERS = ("source_servicename", "source_hostid", "event_type", "resource_type", "resource_id", "level",
                 "since", "before")


def added_tag(body: Any) -> str | None:
    """The full tag an image add request names (source.tag, source.digest.tag or the legacy `tag`)."""
    if not isinstance(body, dict):
        return None
    source: dict[str, Any] = body["source"] if isinstance(body.get("source"), dict) else {}
    tag_source: dict[str, Any] = source["tag"] if isinstance(source.get("tag"), dict) else {}
    digest_source: dict[str, Any] = source["digest"] if isinstance(source.get("digest"), dict) else {}
    candidates = [tag_source.get("pull_string"), tag_source.get("pullstring"), digest_source.get("tag"),
                  body.get("tag")]
    text = next((c for c in candidates if isinstance(c, str) and c), None)
    if text is None:
        return None
    try:
        return normalise_tag(text)
    except ApiError:
        return None


def subscribe_added_image(call: Call) -> None:
    """After an image add: the tag's subscriptions, as anchore-engine's `initialize_subscriptions`."""
    full_tag = added_tag(call.json())
    if full_tag is None:
        return
    enabled = ("analysis_update", "tag_update") if call.flag("autosubscribe" if call.v1 else "auto_subscribe") \
        else ("analysis_update",)
    records.initialise_subscriptions(call.service.store, full_tag, enabled)


def _list_subscriptions(call: Call) -> Any:
    return records.list_subscriptions(call.service.store, call.query.get("subscription_key"),
                                      call.query.get("subscription_type"))


def _get_subscription(call: Call) -> Any:
    found = records.list_subscriptions(call.service.store, identifier=call.path_params["subscription_id"])
    if not found:
        raise ApiError(404, "subscription not found")
    return found


def _add_subscription(call: Call) -> Any:
    body = call.json()
    if not isinstance(body, dict) or not isinstance(body.get("subscription_key"), str) \
            or body.get("subscription_type") not in records.SUBSCRIPTION_TYPES:
        raise ApiError(400, "a subscription needs subscription_key and a subscription_type of "
                            f"{', '.join(records.SUBSCRIPTION_TYPES)}")
    key = normalise_tag(body["subscription_key"])
    added = records.add_subscription(call.service.store, key, body["subscription_type"], body.get("active") is True,
                                     body.get("subscription_value"))
    if added is None:
        raise ApiError(500, "subscription already exists in DB")
    return [added]


def _update_subscription(call: Call) -> Any:
    body = call.json()
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a SubscriptionUpdate object")
    active = body.get("active")
    updated = records.update_subscription(call.service.store, call.path_params["subscription_id"],
                                          active if isinstance(active, bool) else None,
                                          body.get("subscription_value"))
    if updated is None:
        raise ApiError(404, "subscription not found")
    return [updated]


def _delete_subscription(call: Call) -> Any:
    if not records.delete_subscription(call.service.store, call.path_params["subscription_id"]):
        raise ApiError(404, "subscription not found")
    return Response(status_code=200)


def _page(call: Call, name: str, default: int) -> int:
    text = call.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ApiError(400, f"{name} must be a positive integer")
    return int(text)


def _list_events(call: Call) -> Any:
    filters = {name: call.query[name] for name in EVENT_FILTERS if call.query.get(name)}
    return records.list_events(call.service.store, filters, _page(call, "page", 1), _page(call, "limit", 100))


def _get_event(call: Call) -> Any:
    event = records.get_event(call.service.store, call.path_params["event_id"])
    if event is None:
        raise ApiError(404, "Event not found")
    return event


def _delete_events(call: Call) -> Any:
    return records.delete_events(call.service.store, since=call.query.get("since"),
                                 before=call.query.get("before"), level=call.query.get("level"))


def _delete_event(call: Call) -> Any:
    if not records.delete_events(call.service.store, identifier=call.path_params["event_id"]):
        raise ApiError(404, "Event not found")
    return Response(status_code=200)


def routes(service: Service, route: Any) -> list[Route]:
    out = []
    for prefix in ("/v1", "/v2"):
        out += [
            route(f"{prefix}/subscriptions", _list_subscriptions, ["GET"], service),
            route(f"{prefix}/subscriptions", _add_subscription, ["POST"], service),
            route(f"{prefix}/subscriptions/{{subscription_id}}", _get_subscription, ["GET"], service),
            route(f"{prefix}/subscriptions/{{subscription_id}}", _update_subscription, ["PUT"], service),
            route(f"{prefix}/subscriptions/{{subscription_id}}", _delete_subscription, ["DELETE"], service),
            route(f"{prefix}/events", _list_events, ["GET"], service),
            route(f"{prefix}/events", _delete_events, ["DELETE"], service),
            route(f"{prefix}/events/{{event_id}}", _get_event, ["GET"], service),
            route(f"{prefix}/events/{{event_id}}", _delete_event, ["DELETE"], service),
        ]
    return out
