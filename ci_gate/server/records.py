"""Registry credentials, subscriptions, events and last evaluation results in the serve database.

Registry passwords are encrypted (Fernet) with a key derived from the admin password and a random
salt kept in the database, so a copy of the data dir alone does not reveal them; they are never
returned by the API. Changing the admin password makes them unreadable: pulls then fail with a
message asking to update the registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from ci_gate.database import filtered, insert_new
from ci_gate.errors import CiGateError, SourceError
from ci_gate.server import check_history
from ci_gate.server.store import ACCOUNT, Store, add_event, now_text
from ci_gate.sources.interface import SourceOptions

SUBSCRIPTION_TYPES = ("policy_eval", "tag_update", "vuln_update", "analysis_update")
"""anchore-engine's tag subscription types (`anchore_engine/common/__init__.py`)."""


@dataclass(frozen=True)
class RegistryRecord:
    """A registry added over the API (`anchore-cli registry add`)."""

    registry: str
    """HOST[:PORT], optionally /REPO, or a prefix ending in `*` (anchore-engine's matching)."""
    registry_name: str
    registry_type: str
    registry_user: str
    registry_verify: bool
    """False = `--insecure`: plain HTTP is allowed for this registry."""
    created_at: str
    last_updated: str
    password: str | None = field(default=None, repr=False)
    """The decrypted password (only for pulls; None when it cannot be decrypted)."""


class CredentialBox:
    """Encrypts and decrypts registry passwords with a key derived from the admin password and a salt
    kept in each store (so it serves one store or several)."""

    def __init__(self, admin_password: str) -> None:
        self._admin_password = admin_password
        self._ciphers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _cipher(self, store: Store) -> Any:
        from cryptography.fernet import Fernet

        with self._lock:
            cipher = self._ciphers.get(str(store.path))
            if cipher is None:
                with store._transaction() as connection:
                    row = connection.execute("SELECT value FROM serve_meta WHERE key = 'credential_salt'").fetchone()
                    if row is None:
                        salt = secrets.token_hex(16)
                        connection.execute("INSERT INTO serve_meta (key, value) VALUES ('credential_salt', ?)",
                                           (salt,))
                    else:
                        salt = row["value"]
                key = hashlib.pbkdf2_hmac("sha256", self._admin_password.encode(), bytes.fromhex(salt), 200_000)
                cipher = self._ciphers[str(store.path)] = Fernet(base64.urlsafe_b64encode(key))
            return cipher

    def seal(self, store: Store, password: str) -> bytes:
        token: bytes = self._cipher(store).encrypt(password.encode())
        return token

    def open(self, store: Store, token: bytes) -> str | None:
        from cryptography.fernet import InvalidToken

        try:
            return str(self._cipher(store).decrypt(token).decode())
        except InvalidToken:
            return None


# --- registries -----------------------------------------------------------------------------------


def _registry_from_row(store: Store, row: Any, box: CredentialBox | None) -> RegistryRecord:
    return RegistryRecord(registry=row["registry"], registry_name=row["registry_name"],
                          registry_type=row["registry_type"], registry_user=row["registry_user"],
                          registry_verify=bool(row["registry_verify"]), created_at=row["created_at"],
                          last_updated=row["last_updated"],
                          password=box.open(store, row["secret"]) if box is not None else None)


def list_registries(store: Store, registry: str | None = None, box: CredentialBox | None = None
                    ) -> list[RegistryRecord]:
    if registry is None:
        rows = store._query("SELECT * FROM registries WHERE account = ? ORDER BY registry", (ACCOUNT,))
    else:
        rows = store._query("SELECT * FROM registries WHERE account = ? AND registry = ?", (ACCOUNT, registry))
    return [_registry_from_row(store, row, box) for row in rows]


def save_registry(store: Store, box: CredentialBox, registry: str, name: str, registry_type: str, user: str,
                  password: str, verify: bool, create: bool) -> RegistryRecord | None:
    """Insert (create) or replace (update) a registry; None when create finds it exists or update does not."""
    now = now_text()
    sealed = box.seal(store, password)
    with store._transaction() as connection:
        exists = connection.execute("SELECT created_at FROM registries WHERE account = ? AND registry = ?",
                                    (ACCOUNT, registry)).fetchone()
        if (exists is not None) == create:
            return None
        connection.execute(
            "INSERT INTO registries (registry, account, registry_name, registry_type, registry_user, secret, "
            "registry_verify, created_at, last_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account, registry) DO UPDATE SET registry_name = excluded.registry_name, "
            "registry_type = excluded.registry_type, registry_user = excluded.registry_user, "
            "secret = excluded.secret, registry_verify = excluded.registry_verify, "
            "last_updated = excluded.last_updated",
            (registry, ACCOUNT, name, registry_type, user, sealed, int(verify),
             exists["created_at"] if exists is not None else now, now))
    return list_registries(store, registry)[0]


def delete_registry(store: Store, registry: str) -> bool:
    with store._transaction() as connection:
        return bool(connection.execute("DELETE FROM registries WHERE account = ? AND registry = ?",
                                       (ACCOUNT, registry)).rowcount)


def registry_matches(record_registry: str, host: str, repository: str) -> bool:
    """anchore-engine's `registry_record_matches`: a `*` prefix, an exact HOST/REPO, or the host."""
    return ((record_registry.endswith("*") and f"{host}/{repository}".startswith(record_registry[:-1]))
            or ("/" in record_registry and record_registry == f"{host}/{repository}")
            or record_registry == host)


def registry_for(store: Store, box: CredentialBox, host: str, repository: str) -> RegistryRecord | None:
    """The registry entry a pull of HOST/REPOSITORY uses: the longest matching entry, as the engine picks."""
    candidates = sorted(list_registries(store, box=box), key=lambda r: len(r.registry), reverse=True)
    return next((r for r in candidates if registry_matches(r.registry, host, repository)), None)


def source_options_for(base: SourceOptions, store: Store, box: CredentialBox, pull_string: str
                       ) -> SourceOptions:
    """`base` (the server's pull options) with the matching registry entry of `store` applied:
    its credentials, and plain HTTP when it was added with --insecure."""
    from ci_gate.sources.registry import parse_reference

    try:
        reference = parse_reference(pull_string)
    except CiGateError:
        return base
    entry = registry_for(store, box, reference.host, reference.repository)
    if entry is None:
        return base
    if entry.password is None:
        raise SourceError(f"the stored credentials for registry {entry.registry} cannot be decrypted (the admin "
                          "password changed since they were added); update them with `anchore-cli registry "
                          "update`")
    options = replace(base, registry_username=entry.registry_user, registry_password=entry.password,
                      registry_host=reference.host)  # bound: they are sent to this registry only
    if not entry.registry_verify and reference.host not in options.insecure_registries:
        options = replace(options, insecure_registries=(*options.insecure_registries, reference.host))
    return options


# --- subscriptions --------------------------------------------------------------------------------


def subscription_id(account: str, key: str, subscription_type: str) -> str:
    """anchore-engine's id: md5 of `account+key+type`."""
    return hashlib.md5("+".join([account, key, subscription_type]).encode(), usedforsecurity=False).hexdigest()


def initialise_subscriptions(store: Store, full_tag: str, enabled: tuple[str, ...]) -> None:
    """What an image add does (anchore-engine `initialize_subscriptions`): the four tag subscriptions
    exist for the tag; those in `enabled` are switched on, the others keep their state (new: off)."""
    now = now_text()
    with store._transaction() as connection:
        for subscription_type in SUBSCRIPTION_TYPES:
            identifier = subscription_id(ACCOUNT, full_tag, subscription_type)
            active = subscription_type in enabled
            row = connection.execute("SELECT active FROM subscriptions WHERE subscription_id = ?",
                                     (identifier,)).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO subscriptions (subscription_id, account, subscription_key, subscription_type, "
                    "active, created_at, last_updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (identifier, ACCOUNT, full_tag, subscription_type, int(active), now, now))
            elif active and not row["active"]:
                connection.execute("UPDATE subscriptions SET active = 1, last_updated = ? WHERE subscription_id = ?",
                                   (now, identifier))


def list_subscriptions(store: Store, key: str | None = None, subscription_type: str | None = None,
                       identifier: str | None = None) -> list[dict[str, Any]]:
    sql, parameters = filtered("SELECT * FROM subscriptions WHERE account = ?", [ACCOUNT],
                               (("subscription_key", key), ("subscription_type", subscription_type),
                                ("subscription_id", identifier)))
    rows = store._query(sql + " ORDER BY subscription_key, subscription_type", parameters)
    return [{"subscription_id": row["subscription_id"], "userId": row["account"],
             "subscription_key": row["subscription_key"], "subscription_type": row["subscription_type"],
             "subscription_value": row["subscription_value"], "active": bool(row["active"]),
             "created_at": row["created_at"], "last_updated": row["last_updated"]} for row in rows]


def add_subscription(store: Store, key: str, subscription_type: str, active: bool, value: str | None
                     ) -> dict[str, Any] | None:
    """A new subscription; None when it exists (the engine's 'subscription already exists in DB')."""
    identifier = subscription_id(ACCOUNT, key, subscription_type)
    now = now_text()
    with store._transaction() as connection:
        if not insert_new(connection, "subscriptions", {
                "subscription_id": identifier, "account": ACCOUNT, "subscription_key": key,
                "subscription_type": subscription_type, "subscription_value": value, "active": int(active),
                "created_at": now, "last_updated": now}):
            return None
    return list_subscriptions(store, identifier=identifier)[0]


def update_subscription(store: Store, identifier: str, active: bool | None, value: str | None
                        ) -> dict[str, Any] | None:
    now = now_text()
    with store._transaction() as connection:
        if not connection.execute("SELECT 1 FROM subscriptions WHERE subscription_id = ? AND account = ?",
                                  (identifier, ACCOUNT)).fetchone():
            return None
        if active is not None:
            connection.execute("UPDATE subscriptions SET active = ?, last_updated = ? WHERE subscription_id = ?",
                               (int(active), now, identifier))
        if value is not None:
            connection.execute("UPDATE subscriptions SET subscription_value = ?, last_updated = ? "
                               "WHERE subscription_id = ?", (value, now, identifier))
    return list_subscriptions(store, identifier=identifier)[0]


def delete_subscription(store: Store, identifier: str) -> bool:
    with store._transaction() as connection:
        return bool(connection.execute("DELETE FROM subscriptions WHERE subscription_id = ? AND account = ?",
                                       (identifier, ACCOUNT)).rowcount)


# --- events ---------------------------------------------------------------------------------------


def event_body(row: Any) -> dict[str, Any]:
    """anchore-engine's `EventResponse` (`db_events._db_to_dict`)."""
    return {
        "generated_uuid": row["generated_uuid"], "created_at": row["timestamp"],
        "event": {"type": row["type"], "level": row["level"], "message": row["message"],
                  "details": json.loads(row["details"]), "timestamp": row["timestamp"],
                  "resource": {"user_id": row["account"], "type": row["resource_type"], "id": row["resource_id"]},
                  "source": {"servicename": "ci-gate-serve", "hostid": "ci-gate-serve", "base_url": None,
                             "request_id": None},
                  "category": row["type"].split(".", 1)[0], "notification_type": row["notification_type"]},
    }


def list_events(store: Store, filters: dict[str, str], page: int, limit: int) -> dict[str, Any]:
    """`EventsList`, newest first; `event_type` may use `*` wildcards as in the engine."""
    sql, parameters = "SELECT * FROM events WHERE account = ?", [ACCOUNT]
    if filters.get("event_type"):
        sql += " AND type LIKE ? ESCAPE '\\'"
        parameters.append(filters["event_type"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                          .replace("*", "%"))
    sql, parameters_any = filtered(sql, parameters, [(column, filters.get(column))
                                                     for column in ("resource_type", "resource_id", "level")])
    if filters.get("since"):
        sql += " AND timestamp > ?"
        parameters_any.append(filters["since"])
    if filters.get("before"):
        sql += " AND timestamp < ?"
        parameters_any.append(filters["before"])
    if filters.get("source_servicename") and filters["source_servicename"] != "ci-gate-serve":
        sql += " AND 1 = 0"
    sql += " ORDER BY timestamp DESC, generated_uuid LIMIT ? OFFSET ?"
    parameters_any += [limit + 1, (page - 1) * limit]
    rows = store._query(sql, parameters_any)
    results = [event_body(row) for row in rows[:limit]]
    return {"results": results, "next_page": len(rows) > limit, "item_count": len(results), "page": page}


def get_event(store: Store, identifier: str) -> dict[str, Any] | None:
    rows = store._query("SELECT * FROM events WHERE account = ? AND generated_uuid = ?", (ACCOUNT, identifier))
    return event_body(rows[0]) if rows else None


def delete_events(store: Store, identifier: str | None = None, since: str | None = None,
                  before: str | None = None, level: str | None = None) -> list[str]:
    sql, parameters = " FROM events WHERE account = ?", [ACCOUNT]
    for clause, value in (("generated_uuid = ?", identifier), ("timestamp > ?", since), ("timestamp < ?", before),
                          ("level = ?", level)):
        if value:
            sql += f" AND {clause}"
            parameters.append(value)
    with store._transaction() as connection:
        deleted = [row["generated_uuid"] for row in connection.execute("SELECT generated_uuid" + sql, parameters)]
        connection.execute("DELETE" + sql, parameters)
    return deleted


def record_evaluation(store: Store, full_tag: str, policy_id: str, digest: str, status: str,
                      evaluation: Any = None) -> bool:
    """Remember a check's result (each evaluation kept, per tag and policy; a check's whole `evaluation`
    too, for `check?history=true`: ci_gate.server.check_history); when the final action differs from the
    tag's last one under the same policy, record a policy_eval event, as anchore-engine sends its
    policy_eval notification only when the final action changes. True when it flipped.
    Every check runs this: checks of one tag under one policy take turns (they read then replace its
    last result), checks of other tags do not wait for them."""
    with store._transaction(exclusive=False) as connection:
        store.database.lock_name(connection, f"evaluation:{full_tag}\0{policy_id}")
        row = connection.execute("SELECT digest, status FROM evaluation_status WHERE account = ? AND tag = ? "
                                 "AND policy_id = ?", (ACCOUNT, full_tag, policy_id)).fetchone()
        connection.execute("INSERT INTO evaluation_history (tag, policy_id, digest, status, evaluated_at) "
                           "VALUES (?, ?, ?, ?, ?)", (full_tag, policy_id, digest, status, now_text()))
        if evaluation is not None:
            check_history.keep(connection, ACCOUNT, full_tag, policy_id, digest, evaluation)
        if row is not None and (row["digest"], row["status"]) == (digest, status):
            return False
        connection.execute("INSERT INTO evaluation_status (account, tag, policy_id, digest, status) "
                           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, tag, policy_id) "
                           "DO UPDATE SET digest = excluded.digest, status = excluded.status",
                           (ACCOUNT, full_tag, policy_id, digest, status))
        if row is not None and row["status"] != status:
            add_event(connection, ACCOUNT, "policy_eval", full_tag, {
                "last_eval": {"image_digest": row["digest"], "status": row["status"], "policy_id": policy_id},
                "curr_eval": {"image_digest": digest, "status": status, "policy_id": policy_id}})
            return True
    return False


def evaluated_digest(store: Store, full_tag: str, policy_id: str) -> str | None:
    """The digest the tag's last recorded evaluation under `policy_id` was of (None: never evaluated)."""
    rows = store._query("SELECT digest FROM evaluation_status WHERE account = ? AND tag = ? AND policy_id = ?",
                        (ACCOUNT, full_tag, policy_id))
    return str(rows[0]["digest"]) if rows else None
