"""Run a composite action's steps the way the GitHub runner does, for tests.

What the runner does for a composite action (docs "Metadata syntax" and "Workflow commands"):
- inputs take their `default` when not given; `${{ inputs.x }}`, `${{ steps.<id>.outputs.<name> }}`,
  `${{ github.* }}` and `${{ env.* }}` are expanded in `env`, `with`, `if` and `run` before a step runs;
- `run` steps execute with `bash --noprofile --norc -eo pipefail {0}` (the `shell: bash` template),
  with GITHUB_ACTION_PATH set to the action's directory and a fresh GITHUB_OUTPUT file per step
  whose `name=value` and `name<<DELIMITER` lines become the step's outputs; GITHUB_STEP_SUMMARY is
  a per-step file too;
- a step's `if` defaults to `success()`; `always()` runs it after a failure;
- the action's outputs are its `outputs.<id>.value` expressions evaluated at the end.
`uses` steps (e.g. the SARIF upload) cannot run offline: they are recorded with their evaluated
`with` values, for the test to assert on. `actions/cache/restore` and `actions/cache/save` run against
`LocalActionsCache`, which follows actions/cache's documented behaviour on a local folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepRecord:
    name: str
    id: str
    kind: str
    """run, uses or skipped."""
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    uses: str = ""
    with_values: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepRecord]
    outputs: dict[str, str]
    failed: bool


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT syntax: `name=value` or `name<<DELIMITER` … `DELIMITER`."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for inner in lines:
                if inner == delimiter:
                    break
                value.append(inner)
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


class LocalActionsCache:
    """actions/cache/restore and actions/cache/save (v4) on a local folder, as their READMEs document:

    - restore: an entry whose key equals `key` is restored and `cache-hit` is 'true'; otherwise the
      newest entry whose key starts with one of `restore-keys` (in order) is restored and `cache-hit`
      is 'false'; nothing found: nothing restored, `cache-hit` ''. `cache-matched-key` names the entry.
    - save: entries are immutable; saving under an existing key changes nothing.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.saved: list[str] = []
        self.restored: list[str] = []

    def _entry(self, key: str) -> Path:
        return self.folder / re.sub(r"[^A-Za-z0-9._-]", "_", key)

    def restore(self, with_values: dict[str, str]) -> dict[str, str]:
        path = Path(with_values["path"])
        key = with_values["key"]
        match = None
        if self._entry(key).exists():
            match = key
        else:
            for prefix in filter(None, (line.strip() for line in with_values.get("restore-keys", "").splitlines())):
                candidates = [entry for entry in self.folder.iterdir() if entry.name.startswith(prefix)]
                if candidates:
                    match = max(candidates, key=lambda entry: entry.stat().st_mtime_ns).name
                    break
        if match is None:
            return {"cache-hit": "", "cache-primary-key": key}
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._entry(match), path)
        self.restored.append(match)
        return {"cache-hit": "true" if match == key else "false", "cache-primary-key": key,
                "cache-matched-key": match}

    def save(self, with_values: dict[str, str]) -> dict[str, str]:
        entry = self._entry(with_values["key"])
        if not entry.exists():
            shutil.copyfile(with_values["path"], entry)
            os.utime(entry, ns=(time.time_ns(), time.time_ns()))
            self.saved.append(with_values["key"])
        return {}


class CompositeActionRunner:
    def __init__(self, action_dir: Path, workspace: Path, runner_temp: Path, base_env: dict[str, str],
                 github_context: dict[str, str], cache: LocalActionsCache | None = None):
        self.cache = cache
        self.action_dir = action_dir
        self.workspace = workspace
        self.runner_temp = runner_temp
        self.base_env = base_env
        self.github = github_context
        self.metadata = yaml.safe_load((action_dir / "action.yml").read_text())

    def run(self, inputs: dict[str, str]) -> ActionRun:
        declared = self.metadata.get("inputs", {})
        unknown = set(inputs) - set(declared)
        if unknown:
            raise ValueError(f"inputs not declared by the action: {sorted(unknown)}")
        self.inputs = {}
        for name, spec in declared.items():
            default = str(spec.get("default", "")) if spec else ""
            self.inputs[name] = inputs.get(name, self._expand(default, {}))
        records: list[StepRecord] = []
        step_outputs: dict[str, dict[str, str]] = {}
        failed = False
        for index, step in enumerate(self.metadata["runs"]["steps"]):
            step_id = step.get("id", f"__{index}")
            context = {"steps": step_outputs, "failed": failed}
            condition = step.get("if", "success()")
            if not self._condition(str(condition), context):
                records.append(StepRecord(step.get("name", step_id), step_id, "skipped", uses=step.get("uses", "")))
                continue
            if "uses" in step:
                with_values = {k: self._expand(str(v), context) for k, v in (step.get("with") or {}).items()}
                record = StepRecord(step.get("name", step_id), step_id, "uses", uses=step["uses"],
                                    with_values=with_values)
                if self.cache is not None and step["uses"].startswith("actions/cache/restore@"):
                    record.outputs = self.cache.restore(with_values)
                elif self.cache is not None and step["uses"].startswith("actions/cache/save@"):
                    record.outputs = self.cache.save(with_values)
                step_outputs[step_id] = record.outputs
                records.append(record)
                continue
            record = self._run_step(step, step_id, index, context)
            step_outputs[step_id] = record.outputs
            records.append(record)
            if record.exit_code != 0 and not step.get("continue-on-error"):
                failed = True
        context = {"steps": step_outputs, "failed": failed}
        outputs = {name: self._expand(str(spec.get("value", "")), context)
                   for name, spec in (self.metadata.get("outputs") or {}).items()}
        return ActionRun(records, outputs, failed)

    def _run_step(self, step: dict[str, Any], step_id: str, index: int, context: dict[str, Any]) -> StepRecord:
        assert step.get("shell") == "bash", "only bash steps are supported (all of ours are)"
        step_dir = self.runner_temp / f"step-{index}"
        step_dir.mkdir(parents=True, exist_ok=True)
        output_file = step_dir / "output"
        summary_file = step_dir / "summary"
        output_file.touch()
        summary_file.touch()
        script = step_dir / "script.sh"
        script.write_text(self._expand(step["run"], context))
        env = dict(self.base_env)
        env.update({k: self._expand(str(v), context) for k, v in (step.get("env") or {}).items()})
        env.update({
            "GITHUB_ACTION_PATH": str(self.action_dir),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.runner_temp),
        })
        completed = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                   cwd=self.workspace, env=env, capture_output=True, text=True, timeout=600)
        return StepRecord(step.get("name", step_id), step_id, "run", completed.returncode, completed.stdout,
                          completed.stderr, parse_output_file(output_file.read_text()), summary_file.read_text())

    # --- expressions (the subset our action uses) --------------------------------------------

    def _value(self, path: str, context: dict[str, Any]) -> str:
        parts = path.split(".")
        if parts[0] == "inputs":
            return self.inputs.get(parts[1], "")
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return context["steps"].get(parts[1], {}).get(parts[3], "")
        if parts[0] == "github":
            return self.github.get(parts[1], "")
        if parts[0] == "env":
            return self.base_env.get(parts[1], "")
        if parts[0] == "runner":
            return {"os": "Linux", "temp": str(self.runner_temp), "arch": "X64"}.get(parts[1], "")
        raise ValueError(f"unsupported expression {path!r}")

    def _expand(self, text: str, context: dict[str, Any]) -> str:
        return EXPRESSION.sub(lambda match: self._value(match.group(1), context), text)

    def _condition(self, text: str, context: dict[str, Any]) -> bool:
        expression = EXPRESSION.sub(lambda match: match.group(1), text).strip()
        python = expression.replace("&&", " and ").replace("||", " or ")
        python = re.sub(r"!(?!=)", " not ", python)
        python = python.replace("always()", "True").replace("success()", str(not context["failed"]))
        python = python.replace("failure()", str(context["failed"]))
        python = re.sub(r"\b((?:inputs|steps|github|env|runner)(?:\.[A-Za-z0-9_-]+)+)",
                        lambda match: repr(self._value(match.group(1), context)), python)
        return bool(eval(python, {"__builtins__": {}}, {}))  # our own action's conditions only


def copy_action_checkout(source: Path, target: Path) -> Path:
    """What the runner downloads for `uses: owner/ci-gate@sha`: the repository's files (no .git, no caches)."""
    import shutil

    ignore = shutil.ignore_patterns(".git", "build", "dist", "__pycache__", "*.egg-info", ".cache", ".mypy_cache",
                                    ".ruff_cache", ".pytest_cache", "node_modules", ".gitlab-ci-local", "bench")
    shutil.copytree(source, target, ignore=ignore, symlinks=True)
    return target


def ensure_executable_env() -> dict[str, str]:
    """A runner-like environment for subprocesses (PATH, HOME, locale), without our test's variables."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYENV_ROOT", "PYENV_VERSION", "SSL_CERT_FILE")
    return {name: os.environ[name] for name in keep if name in os.environ}
