"""A forced re-analysis is what serve answers with afterwards, even when it lands within the second.

serve keeps recently read analyses in memory; `analyzed_at` has one-second resolution, so a cache
keyed by it alone served the previous analysis after a quick `force=true` re-analysis (here: one
that adds a Dockerfile, visible at once in the image's dockerfile metadata).
"""

from __future__ import annotations

import base64

from tests.support.serve import ServeProcess


def test_a_forced_reanalysis_within_the_same_second_replaces_the_cached_analysis(
        fresh_server: ServeProcess, pushed_images: list[tuple[str, str]]) -> None:
    fresh_server.start(workers=1)
    stale = []
    for tag, digest in pushed_images:
        dockerfile = f"FROM scratch\nLABEL round={digest[-8:]}\n"
        assert fresh_server.add_tag(tag).status_code == 200
        first = fresh_server.wait_status(digest)
        guessed = fresh_server.get(f"/v2/images/{digest}/metadata/dockerfile")  # read once: now cached
        assert guessed.status_code == 200, guessed.text
        assert fresh_server.add_tag(tag, force=True, dockerfile=dockerfile).status_code == 200
        second = fresh_server.wait_status(digest, timeout=60)
        assert second["analysis_status"] == "analyzed", second
        shown = base64.b64decode(fresh_server.get(f"/v2/images/{digest}/metadata/dockerfile").json()["metadata"])
        if shown.decode() != dockerfile:
            stale.append((first["analyzed_at"], second["analyzed_at"]))
    assert not stale, stale
