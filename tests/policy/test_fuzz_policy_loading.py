"""The policy loader and `.ci-gate.yaml` under hostile documents: bombs, depth, size, and damaged
real policies (hypothesis). The loader answers a policy or problems, never an exception; settings
loading answers settings or one UsageError.

A longer pass by hand: `CI_GATE_FUZZ_EXAMPLES=5000 python -m pytest tests/policy/test_fuzz_policy_loading.py`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_gate.bounded_yaml import YamlLimitError, check_shape
from ci_gate.cli.gate import load_config_file
from ci_gate.errors import UsageError
from ci_gate.policy.documents import MAX_POLICY_CHARS, check_text

ROOT = Path(__file__).resolve().parents[2]
PACKS = ROOT / "ci_gate" / "policy" / "packs"
EXAMPLES = int(os.environ.get("CI_GATE_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for level in range(1, levels):
        lines.append(f"{names[level]}: &{names[level]} [" + ", ".join([f"*{names[level - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# --- the documented attacks ---------------------------------------------------------------------------------


def test_an_alias_bomb_policy_is_a_problem_not_a_billion_nodes() -> None:
    policy, problems = check_text("id: x\nname: bomb\n" + billion_laughs(), "bomb.yaml")
    assert policy is None
    assert "expands to more than 1,000,000 values" in problems[0].message


DEEP_BLOCK = "a:\n" + "".join(f"{' ' * n}- \n" for n in range(1, 3000))


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, DEEP_BLOCK, "{" * 50_000],
                         ids=["flow-100000", "block-3000", "unclosed-50000"])
def test_deep_yaml_is_a_problem_not_a_crash(text: str) -> None:
    # libyaml's loader recurses in C: 100,000 levels killed the process with a segmentation fault.
    policy, problems = check_text(text, "deep.yaml")
    assert policy is None and problems
    assert any("nests more than" in p.message or "invalid YAML" in p.message for p in problems)


def test_deep_json_is_a_problem_not_a_recursion_error() -> None:
    policy, problems = check_text('{"a":' * 5000 + "1" + "}" * 5000, "deep.json")
    assert policy is None and problems


def test_an_oversized_policy_is_refused_before_parsing() -> None:
    policy, problems = check_text("#" * (MAX_POLICY_CHARS + 1), "huge.yaml")
    assert policy is None and "more than the 33,554,432 allowed" in problems[0].message


def test_a_long_problem_line_is_cut() -> None:
    document = yaml.safe_load((PACKS / "default.yaml").read_text())
    document["rule_sets"][0]["rules"][0]["gate"] = "g" * 100_000
    _, problems = check_text(json.dumps(document), "long.json")
    assert problems and all(len(problem.render("long.json")) < 1100 for problem in problems)


def test_ci_gate_yaml_bombs_and_floods_are_one_short_usage_error(tmp_path: Path) -> None:
    for text, fragment in ((billion_laughs(), "expands to more than"), ("x: " + "[" * 100_000, "nests more than"),
                           ("k: v\n" * 300_000, "more than the 1,048,576 allowed"),
                           ("z" * 10_000_000 + ": 1\n", "more than the 1,048,576 allowed")):
        (tmp_path / ".ci-gate.yaml").write_text(text)
        with pytest.raises(UsageError, match=fragment) as caught:
            load_config_file(tmp_path)
        assert len(str(caught.value)) < 500
    (tmp_path / ".ci-gate.yaml").write_text("q" * 100_000 + ": 1\n")  # an unknown setting is quoted short
    with pytest.raises(UsageError) as caught:
        load_config_file(tmp_path)
    assert len(str(caught.value)) < 1000


def test_the_gate_command_refuses_a_bomb_config_with_one_line(tmp_path: Path) -> None:
    (tmp_path / ".ci-gate.yaml").write_text(billion_laughs())
    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", "dir:/nonexistent"], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "expands to more than" in lines[0], result.stderr


# --- properties -------------------------------------------------------------------------------------------------

_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=30),
                    st.sampled_from(["stop", "warn", "go", "vulnerabilities", "package", "*", "dockerfile", "", "1"]))
_VALUES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=10)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.extend(_paths(value, (*prefix, index)))
    return found


_BASES = [yaml.safe_load(path.read_text()) for path in sorted(PACKS.glob("*.yaml"))]


@FUZZ
@given(st.data())
def test_a_damaged_real_policy_gets_problems_never_an_exception(data: st.DataObject) -> None:
    document = copy.deepcopy(data.draw(st.sampled_from(_BASES)))
    paths = _paths(document)
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(paths))
        if not path:
            continue
        parent = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = data.draw(_VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    as_yaml = data.draw(st.booleans())
    text = yaml.safe_dump(document) if as_yaml else json.dumps(document)
    policy, problems = check_text(text, "fuzz.yaml" if as_yaml else "fuzz.json")
    assert policy is not None or any(problem.severity == "error" for problem in problems)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("[]{}:,-&*!|>'\" \n\tabc01?#%@`")), max_size=400))
def test_arbitrary_yaml_text_gets_problems_never_an_exception(text: str) -> None:
    with contextlib.suppress(YamlLimitError):
        check_shape(text, "fuzz", 10_000)
    policy, problems = check_text(text, "fuzz.yaml")
    assert policy is not None or problems


@pytest.mark.parametrize("text", ["?", "? 1\n", "1: 2\n", "null: x\nid: p\n"])
def test_keys_that_are_not_strings_are_problems(text: str) -> None:
    # Found by the property test above: `?` alone is the mapping {None: None}, whose key broke the hint.
    policy, problems = check_text(text, "keys.yaml")
    assert policy is None and any("unknown field" in problem.message for problem in problems)


@pytest.mark.parametrize("text", ["null", "~", "!", "--- null\n"])
def test_a_null_document_is_a_problem_not_an_empty_answer(text: str) -> None:
    # Found by the property test above: no policy and no problem either, which callers could not tell apart.
    policy, problems = check_text(text, "null.yaml")
    assert policy is None and problems and problems[0].severity == "error"


def test_validate_refuses_a_null_policy(tmp_path: Path) -> None:
    (tmp_path / "null.yaml").write_text("null\n")
    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "policy", "validate", str(tmp_path / "null.yaml")],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode != 0 and "empty" in (result.stdout + result.stderr)


@pytest.mark.parametrize("text", ["!0", "a: !custom x\n", "name: !!python/name:os.system\n"])
def test_a_tag_no_safe_loader_knows_is_a_problem(text: str) -> None:
    # Found by the property test above: the constructor's error escaped check_text (an internal error).
    policy, problems = check_text(text, "tag.yaml")
    assert policy is None and any("could not determine a constructor" in problem.message for problem in problems)
