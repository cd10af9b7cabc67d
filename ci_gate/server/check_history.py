"""The stored policy evaluations behind `GET /v1|v2/images/{digest}/check?history=true`.

anchore-engine's catalog stores the result of every check (`perform_policy_evaluation`) under the id
`md5(policyId:userId:imageDigest:fulltag:FINAL_ACTION)`, so it keeps the newest evaluation of each
final action per image, tag and policy; `history=true` returns all of them, `history=false` (the
default) only the fresh one. ci-gate keeps the same: the evaluation (ci_gate.model.Evaluation, through
ci_gate.codec) zlib-compressed in `stored_evaluations` (migration 4), written in the transaction that
records the check's result (ci_gate.server.records.record_evaluation), and rendered again on request
in the v1 or v2 shape. Deleting the image or the policy deletes its stored evaluations
(ci_gate.server.store): an image added again, or a new policy under a deleted one's id, starts a
history of its own.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from ci_gate.database import Connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS stored_evaluations (
    eval_id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    tag TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    final_action TEXT NOT NULL,
    evaluated_at TEXT NOT NULL,
    evaluation BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS stored_evaluations_of_image ON stored_evaluations (digest, tag, policy_id)
"""


def eval_id(account: str, tag: str, policy_id: str, digest: str, final_action: str) -> str:
    """anchore-engine's stored evaluation id: one per final action of an image's tag under a policy."""
    return hashlib.md5(f"{policy_id}:{account}:{digest}:{tag}:{final_action.upper()}".encode(),
                       usedforsecurity=False).hexdigest()


def keep(connection: Connection, account: str, tag: str, policy_id: str, digest: str, evaluation: Any) -> None:
    """Store `evaluation` (inside the caller's transaction), replacing the one of the same final action."""
    from ci_gate.codec import to_dict

    # level 1: as small as level 6 on these repetitive documents (within 10%), ten times faster on the check path
    document = zlib.compress(json.dumps(to_dict(evaluation), separators=(",", ":")).encode(), 1)
    connection.execute(
        "INSERT INTO stored_evaluations (eval_id, digest, tag, policy_id, final_action, evaluated_at, evaluation) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (eval_id) DO UPDATE SET evaluated_at = excluded.evaluated_at, "
        "evaluation = excluded.evaluation",
        (eval_id(account, tag, policy_id, digest, evaluation.final_action), digest, tag, policy_id,
         evaluation.final_action.upper(), evaluation.evaluated_at, document))


def stored(store: Any, tag: str, policy_id: str, digest: str) -> list[Any]:
    """The stored evaluations of the image's tag under the policy, newest first."""
    from ci_gate.codec import from_dict
    from ci_gate.model import Evaluation

    rows = store._query("SELECT evaluation FROM stored_evaluations WHERE digest = ? AND tag = ? AND policy_id = ? "
                        "ORDER BY evaluated_at DESC, final_action", (digest, tag, policy_id))
    return [from_dict(Evaluation, json.loads(zlib.decompress(bytes(row["evaluation"])))) for row in rows]
