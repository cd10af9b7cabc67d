"""Several `ci-gate serve` replicas on one database (SQLite in a shared data dir, or PostgreSQL): the dashboard's
form served by one replica is accepted by another, and an API-only replica reports no workers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import ServeProcess

_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
_POLICY = {"id": "plain", "name": "plain policy", "version": "2", "description": "warns",
           "rule_sets": [{"id": "rs", "name": "root", "version": "2", "rules": [
               {"id": "r1", "gate": "dockerfile", "trigger": "instruction", "action": "warn",
                "params": [{"name": "instruction", "value": "RUN"}, {"name": "check", "value": "exists"}]}]}],
           "allowlists": [], "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                                           "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"],
                                           "allowlist_ids": []}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    """An API-only replica and a full one on one database: SQLite in a shared data dir, or PostgreSQL."""
    if request.param == "sqlite":
        api = ServeProcess(tmp_path / "data", extra_args=["--role", "api"])
        full = ServeProcess(tmp_path / "data")
        full.log_path = tmp_path / "full-serve.log"
    else:
        database = ["--database", request.getfixturevalue("postgres_url")]
        api = ServeProcess(tmp_path / "api", extra_args=[*database, "--role", "api"])
        full = ServeProcess(tmp_path / "full", extra_args=database)
    with api, full:
        yield api, full


def _active(server: ServeProcess) -> list[str]:
    return [p["policy_id"] for p in server.get("/v2/policies").json() if p["active"]]


def test_a_form_served_by_one_replica_is_accepted_by_another_and_after_a_restart(
        replicas: tuple[ServeProcess, ServeProcess]) -> None:
    api, full = replicas
    assert api.post("/v2/policies", json=_POLICY).status_code == 200
    page = api.get("/ui/policies")
    assert page.status_code == 200, page.text
    [token, *_] = _TOKEN.findall(page.text)

    wrong = full.post("/ui/policies/activate", data={"policy_id": "plain", "csrf_token": "0" * 64},
                      allow_redirects=False)
    assert wrong.status_code == 403  # still checked: any token is not good enough
    posted = full.post("/ui/policies/activate", data={"policy_id": "plain", "csrf_token": token},
                       allow_redirects=False)
    assert posted.status_code == 303, posted.text
    assert _active(api) == ["plain"]

    # the key outlives the process that drew it: a form loaded before a rolling restart still posts
    api.stop()
    api.start()
    back = api.post("/ui/policies/activate", data={"policy_id": "ci-gate-default", "csrf_token": token},
                    allow_redirects=False)
    assert back.status_code == 303, back.text
    assert _active(full) == ["ci-gate-default"]
    assert _TOKEN.findall(full.get("/ui/policies").text)[0] == token


def test_an_api_only_replica_reports_no_workers(replicas: tuple[ServeProcess, ServeProcess]) -> None:
    api, full = replicas
    assert api.get("/status").json()["detail"]["workers"] == 0
    assert full.get("/status").json()["detail"]["workers"] == full.workers == 2
