"""`force=true` on an image that is being analysed (or is still queued) shares that analysis.

Guards the mutation that queues a second analysis whenever force is set: two workers would then
analyse the same digest at once and the second result would overwrite the first mid-read.
Exercised on the server's real SQLite store, the code path every POST /v2/images takes.
"""

from __future__ import annotations

from pathlib import Path

from ci_gate.server.store import ANALYZED, ANALYZING, NOT_ANALYZED, Store

DIGEST = "sha256:" + "c" * 64


def _add(store: Store, force: bool) -> tuple[str, bool]:
    record, queued = store.add_image(DIGEST, f"127.0.0.1:5000/team/app@{DIGEST}", "127.0.0.1:5000/team/app:1",
                                     {}, None, force)
    return record.analysis_status, queued


def test_force_while_analysing_does_not_queue_a_second_analysis(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        assert _add(store, force=False) == (NOT_ANALYZED, True)
        assert _add(store, force=True) == (NOT_ANALYZED, False)  # still queued: the same entry, not a second
        claimed = store.claim_next()
        assert claimed is not None and claimed.digest == DIGEST
        assert _add(store, force=True) == (ANALYZING, False)
        assert store.claim_next() is None  # nothing else for another worker to pick up
        store.finish(DIGEST, {"analysis": "done"})
        assert store.counters.by_digest == {DIGEST: 1}
        # Once analysed, force does re-queue, exactly once.
        assert _add(store, force=True) == (NOT_ANALYZED, True)
        assert store.claim_next() is not None and store.claim_next() is None
        store.finish(DIGEST, {"analysis": "again"})
        assert store.get_image(DIGEST).analysis_status == ANALYZED  # type: ignore[union-attr]
        assert store.counters.by_digest == {DIGEST: 2}
    finally:
        store.close()
