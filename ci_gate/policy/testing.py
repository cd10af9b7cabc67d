"""Policy unit tests (`ci-gate policy test DIR`), like `conftest verify`.

Each `*.yaml` file in the folder holds `cases:`, each case::

    - name: the app image may not run as root
      analysis: fixtures/app.json        # an analysis JSON (ci-gate analyze -o json), relative to the file
      # or image: oci-dir:build/oci       # analysed now (dockerfile: and base_image: optional)
      policy: builtin:dod                 # or a policy file, relative to the file
      tag: registry.example.com/app:1     # optional: the tag mappings see
      now: "2026-06-01T00:00:00Z"         # optional: the evaluation time (expiry tests)
      expect:
        final_action: STOP
        findings:                         # each must fire: gate/trigger, or a mapping of
          - image_user/runs_as_root       #   gate, trigger, trigger_id, rule_id, action, allowlisted
          - {gate: files, trigger: suid_or_guid_set, rule_id: dod-2.3-setuid-setgid}
        absent: [ssh_daemon/present]      # each must not fire
        exact: false                      # true: the fired gate/trigger set equals `findings`

A case that does not get its expectations yields a diff; bad files raise PolicyError.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ci_gate.bounded_yaml import YamlLimitError, check_shape
from ci_gate.errors import CiGateError, PolicyError
from ci_gate.model import Analysis, Evaluation, Finding, from_dict
from ci_gate.policy.documents import load_policy
from ci_gate.policy.evaluation import EvaluationInput, evaluate
from ci_gate.policy.fields import parse_timestamp

_FINDING_KEYS = ("gate", "trigger", "trigger_id", "rule_id", "action", "allowlisted")


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    diff: tuple[str, ...] = ()
    evaluation: Evaluation | None = None


def run_directory(directory: Path) -> list[CaseResult]:
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else [directory]
    results: list[CaseResult] = []
    for path in files:
        # Other YAML files in the folder (the policies the cases use) are skipped.
        results.extend(run_file(path, required=not directory.is_dir()))
    return results


MAX_TEST_FILE_CHARS = 16 * 1024 * 1024


def run_file(path: Path, required: bool = True) -> list[CaseResult]:
    try:
        text = path.read_text("utf-8")
        check_shape(text, f"{path}", MAX_TEST_FILE_CHARS)
        document = yaml.safe_load(text)
    except YamlLimitError as error:
        raise PolicyError(str(error)) from None
    except yaml.YAMLError as error:
        if not required:
            return []
        raise PolicyError(f"{path}: invalid YAML in policy test file: {error}") from None
    if not required and not (isinstance(document, dict) and "cases" in document):
        return []
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        raise PolicyError(f"{path}: a policy test file needs a top-level 'cases' list")
    return [run_case(case, path, index) for index, case in enumerate(document["cases"])]


def _analysis(case: Mapping[str, Any], base: Path, name: str) -> Analysis:
    if "analysis" in case:
        fixture = base / str(case["analysis"])
        try:
            data = json.loads(fixture.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise PolicyError(f"{name}: cannot read analysis fixture {fixture}: {error}") from None
        return from_dict(Analysis, data)
    if "image" in case:
        from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image

        image = str(case["image"])
        for scheme in ("oci-dir:", "oci-archive:", "docker-archive:", "dir:"):
            if image.startswith(scheme) and not Path(image[len(scheme):]).is_absolute():
                image = scheme + str(base / image[len(scheme):])
        dockerfile = base / str(case["dockerfile"]) if case.get("dockerfile") else None
        return analyze_image(image, AnalyzeOptions(dockerfile=dockerfile, base_image=case.get("base_image")))
    raise PolicyError(f"{name}: a case needs 'analysis' (a JSON fixture) or 'image'")


def _policy_reference(case: Mapping[str, Any], base: Path, name: str) -> str:
    policy = str(case.get("policy") or "")
    if not policy:
        raise PolicyError(f"{name}: a case needs a 'policy' (a file or builtin:NAME)")
    return policy if policy.startswith("builtin:") else str(base / policy)


def _wanted(entry: Any, name: str) -> dict[str, Any]:
    if isinstance(entry, str):
        gate, _, trigger = entry.partition("/")
        return {"gate": gate, "trigger": trigger} if trigger else {"gate": gate}
    if isinstance(entry, dict) and set(entry) <= set(_FINDING_KEYS):
        return dict(entry)
    raise PolicyError(f"{name}: an expected finding is 'gate/trigger' or a mapping of {', '.join(_FINDING_KEYS)}")


def _fits(finding: Finding, wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        if key == "allowlisted":
            if bool(finding.allowlisted) != bool(value):
                return False
        elif key == "action":
            if finding.action != str(value).upper():
                return False
        elif str(getattr(finding, key)) != str(value):
            return False
    return True


def _describe(wanted: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in wanted.items())


def run_case(case: Any, path: Path, index: int) -> CaseResult:
    if not isinstance(case, dict):
        raise PolicyError(f"{path}: case {index + 1} must be a mapping")
    name = f"{path.name}: {case.get('name') or f'case {index + 1}'}"
    expect = case.get("expect")
    if not isinstance(expect, dict) or "final_action" not in expect:
        raise PolicyError(f"{name}: 'expect' needs at least final_action")
    base = path.parent
    try:
        policy = load_policy(_policy_reference(case, base, name))
        now = parse_timestamp(str(case["now"])) if case.get("now") else None
    except ValueError:
        raise PolicyError(f"{name}: 'now' must be an RFC 3339 date-time") from None
    except CiGateError as error:
        raise PolicyError(f"{name}: {error}") from None
    analysis = _analysis(case, base, name)
    evaluation = evaluate(policy, analysis, EvaluationInput(tag=case.get("tag"), now=now))
    expected_lines = [f"final_action: {str(expect['final_action']).upper()}"]
    actual_lines = [f"final_action: {evaluation.final_action}"]
    wanted = [_wanted(entry, name) for entry in expect.get("findings") or []]
    absent = [_wanted(entry, name) for entry in expect.get("absent") or []]
    for item in wanted:
        expected_lines.append(f"fires: {_describe(item)}")
        fired = any(_fits(f, item) for f in evaluation.findings)
        actual_lines.append(f"fires: {_describe(item)}" if fired else f"does not fire: {_describe(item)}")
    for item in absent:
        expected_lines.append(f"does not fire: {_describe(item)}")
        fired = any(_fits(f, item) for f in evaluation.findings)
        actual_lines.append(f"fires: {_describe(item)}" if fired else f"does not fire: {_describe(item)}")
    if expect.get("exact"):
        # An expectation naming only a gate stands for all of that gate's triggers.
        whole_gates = {w.get("gate") for w in wanted if "trigger" not in w}
        expected_set = sorted({f"{w.get('gate')}/{w.get('trigger', '*')}" for w in wanted})
        actual_set = sorted({f"{f.gate}/{'*' if f.gate in whole_gates else f.trigger}" for f in evaluation.findings})
        expected_lines.append("fired set: " + ", ".join(expected_set))
        actual_lines.append("fired set: " + ", ".join(actual_set))
    passed = expected_lines == actual_lines
    diff = () if passed else tuple(
        line.rstrip("\n") for line in difflib.unified_diff(expected_lines, actual_lines, "expected", "actual",
                                                           lineterm="")
    )
    return CaseResult(name=name, passed=passed, diff=diff, evaluation=evaluation)
