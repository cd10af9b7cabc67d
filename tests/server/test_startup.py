"""The data dir is private, start-up says so when it is not, and answers never show the server's paths."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.support.serve import ServeProcess


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_is_private(fresh_server: ServeProcess) -> None:
    fresh_server.start(workers=0)
    assert fresh_server.post("/v2/user/api-keys", json={"name": "k"}).status_code == 200  # something written
    data = fresh_server.data_dir
    assert _mode(data) == 0o700
    for name in ("ci-gate-serve.sqlite", "ci-gate-serve.sqlite-wal", "ci-gate-accounts.sqlite"):
        assert _mode(data / name) == 0o600, name
    assert "readable by other users" not in fresh_server.full_log()


def test_a_loose_data_dir_is_reported_at_start(fresh_server: ServeProcess) -> None:
    fresh_server.start(workers=0)
    fresh_server.stop()
    data = fresh_server.data_dir
    data.chmod(0o755)
    (data / "ci-gate-serve.sqlite").chmod(0o644)
    fresh_server.start(workers=0)
    log = fresh_server.full_log()
    assert f"{data} is mode 0755, readable by other users" in log and f"chmod 700 {data}" in log
    assert f"{data / 'ci-gate-serve.sqlite'} is mode 0644" in log and "chmod 600" in log
    assert fresh_server.get("/v2/policies").status_code == 200  # a warning, not a refusal


def test_check_answers_do_not_show_the_vulnerability_store_path(tmp_path: Path,
                                                                pushed_images: list[tuple[str, str]]) -> None:
    # The default store location under a distinctive data home, absent: the check warns about it.
    private = tmp_path / "operator-private-dir-5c1e"
    with ServeProcess(tmp_path / "data", workers=1,
                      environment={"XDG_DATA_HOME": str(private), "CI_GATE_VULN_DB": ""}) as server:
        tag, digest = pushed_images[2]
        assert server.add_tag(tag).status_code == 200
        assert server.wait_status(digest)["analysis_status"] == "analyzed"
        for path in (f"/v2/images/{digest}/check", f"/v1/images/{digest}/check"):
            answer = server.get(path, params={"tag": tag})
            assert answer.status_code == 200, answer.text
            assert "operator-private-dir-5c1e" not in answer.text
            assert "the server's vulnerability store" in answer.text
