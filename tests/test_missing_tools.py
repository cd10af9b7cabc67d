"""A test whose tool is missing says which tool and how to get it (tests/support/tools.py)."""

from __future__ import annotations

import pytest

from tests.support.debian import _run
from tests.support.tools import MissingTool, require_tool


def test_a_missing_build_tool_is_missing_tool_naming_it_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    # Without the check this was a raw FileNotFoundError from subprocess (no tool named, no fix).
    with pytest.raises(MissingTool) as raised:
        _run(["debootstrap", "--variant=minbase", "bookworm", "/nonexistent/target"])
    assert str(raised.value).startswith("debootstrap is not installed: apt-get install -y debootstrap")
    assert "bash .ci/run" in str(raised.value)
    with pytest.raises(MissingTool, match="skopeo is not installed: apt-get install -y skopeo"):
        require_tool("skopeo")
