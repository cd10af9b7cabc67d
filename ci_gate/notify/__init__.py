"""Notifications from `ci-gate serve` (docs/notifications.md).

`endpoints` holds the per-account endpoint configurations (and the engine-style `webhooks` file),
`formats` shapes an event for each endpoint kind, `senders` talks to the receivers, and `outbox`
is the durable queue: an event enters it in the transaction that records it, and a delivery
thread (`dispatcher`) sends it with retries, so a receiver that is down never blocks analysis,
a check or the gate.
"""
