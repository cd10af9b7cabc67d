"""Install only what we built: no adapter installs an unpinned name from a package index, the locks pin
every dependency with hashes and install in a clean venv, and ci-gate's wheel builds from the build
lock alone (no `wheel` package, no index)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import yaml
from actions_runner import copy_action_checkout
from install_support import bare_python, locked_wheelhouse, offline_pip_env

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as pip vendors it
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

REPOSITORY = Path(__file__).resolve().parents[2]
ADAPTER_FILES = [
    REPOSITORY / "action.yml",
    REPOSITORY / ".gitlab-ci.yml",
    REPOSITORY / "Dockerfile",
    *sorted((REPOSITORY / "templates").glob("*.yml")),
    *sorted((REPOSITORY / "integrations" / "jenkins").rglob("*.groovy")),
    *sorted((REPOSITORY / "integrations" / "jenkins").rglob("*.txt")),
    *sorted(path for folder in ("github", "gitlab", "jenkins")
            for path in (REPOSITORY / "examples" / folder).iterdir()),
    REPOSITORY / "docs" / "ci-adapters.md",
    REPOSITORY / "examples" / "README.md",
]
PIP_INSTALL = re.compile(r"\b(?:pip3?|-m pip|uv pip|pipx)\s+install\b")
REQUIREMENT_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def logical_lines(text: str) -> list[str]:
    """Lines with shell continuations (`\\` at the end) joined."""
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def index_installs(text: str) -> list[str]:
    """Install commands that may resolve a name against a package index without a hash.

    Allowed: `--require-hashes` (every file checked against the lock) or `--no-index` (a local
    source tree or wheel). Anything else — `pip install ci-gate`, `pip install "$PACKAGE"`,
    `pip install ci-gate==1.0` — could install whatever a public index serves under that name."""
    offending = []
    for line in logical_lines(text):
        if PIP_INSTALL.search(line) and "--require-hashes" not in line and "--no-index" not in line:
            offending.append(line.strip())
    return offending


def test_the_rule_catches_index_installs():
    assert index_installs('python3 -m pip install --quiet "ci-gate==$CI_GATE_VERSION"')
    assert index_installs('python3 -m pip install --quiet --disable-pip-version-check "$CI_GATE_PACKAGE"')
    assert index_installs("pip install ci-gate")
    assert index_installs("pipx install ci-gate")
    assert index_installs('"$venv/bin/python" -m pip install --quiet \\\n  ci-gate')
    assert not index_installs('pip install --require-hashes \\\n  -r requirements/ci-gate.lock')
    assert not index_installs('pip install --no-deps --no-build-isolation --no-index "$source"')


def test_no_adapter_installs_from_an_index_without_pin_and_hash():
    checked = [path for path in ADAPTER_FILES if path.exists()]
    assert REPOSITORY / "action.yml" in checked and REPOSITORY / "templates" / "ci-gate.yml" in checked
    problems = {str(path.relative_to(REPOSITORY)): found for path in checked
                if (found := index_installs(path.read_text(errors="replace")))}
    assert problems == {}


def test_no_version_input_resolves_against_a_public_index():
    action = yaml.safe_load((REPOSITORY / "action.yml").read_text())
    assert "version" not in action["inputs"]
    spec = next(yaml.safe_load_all((REPOSITORY / "templates" / "ci-gate.yml").read_text()))
    assert not {"version", "package"} & set(spec["spec"]["inputs"])
    assert spec["spec"]["inputs"]["install"]["default"] == "source"


def lock_entries(path: Path) -> dict[str, list[str]]:
    """name → the pins in the lock (a name may be pinned once per environment marker)."""
    entries: dict[str, list[str]] = {}
    block: list[str] = []
    for line in [*path.read_text().splitlines(), ""]:
        if line and not line.startswith((" ", "#")):
            block = [line]
        elif line.startswith("    --hash=sha256:"):
            block.append(line)
        elif block:
            match = REQUIREMENT_LINE.match(block[0])
            assert match, f"{path.name}: not pinned with ==: {block[0]}"
            assert len(block) > 1, f"{path.name}: {match.group(1)} has no --hash"
            entries.setdefault(match.group(1).lower().replace("_", "-"), []).append(match.group(2))
            block = []
    return entries


def test_the_lock_pins_every_runtime_dependency_with_hashes():
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
                for requirement in project["dependencies"]}
    locked = lock_entries(REPOSITORY / "requirements" / "ci-gate.lock")
    assert declared - set(locked) == set(), "run the command in requirements/README.md to regenerate the lock"
    assert "ci-gate" not in locked
    # setuptools, and jinja2 for the HTML template the wheel build compiles (build_hooks.py)
    assert set(lock_entries(REPOSITORY / "requirements" / "build.lock")) == {"setuptools", "jinja2", "markupsafe"}


def run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_wheel_builds_from_the_build_lock_and_installs_with_require_hashes(tmp_path):
    """As a contributor or the release job: no `wheel` package, no index, nothing from the base Python."""
    wheelhouse = locked_wheelhouse()
    python_bin = bare_python(tmp_path / "base")
    env = {"PATH": f"{python_bin}:/usr/bin:/bin", "HOME": str(tmp_path), **offline_pip_env(wheelhouse)}
    source = copy_action_checkout(REPOSITORY, tmp_path / "source")
    builder = tmp_path / "builder"
    run([str(python_bin / "python3"), "-m", "venv", str(builder)], env)
    run([str(builder / "bin/python"), "-m", "pip", "install", "--require-hashes", "-r",
         str(REPOSITORY / "requirements/build.lock")], env)
    run([str(builder / "bin/python"), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(tmp_path / "dist"), str(source)], env)
    wheels = list((tmp_path / "dist").glob("ci_gate-*-py3-none-any.whl"))
    assert len(wheels) == 1
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    (tmp_path / "ci-gate.req").write_text(f"ci-gate @ {wheels[0].as_uri()} --hash=sha256:{digest}\n")

    user = tmp_path / "user"
    run([str(python_bin / "python3"), "-m", "venv", str(user)], env)
    run([str(user / "bin/python"), "-m", "pip", "install", "--require-hashes", "-r",
         str(REPOSITORY / "requirements/ci-gate.lock"), "-r", str(tmp_path / "ci-gate.req")], env)
    assert run([str(user / "bin/ci-gate"), "--version"], env).startswith("ci-gate ")
    run([str(user / "bin/python"), "-m", "pip", "check"], env)
    installed = run([str(user / "bin/python"), "-m", "pip", "list", "--format=freeze"], env)
    assert "wheel==" not in installed and "pytest" not in installed
    # ci-gate really runs from the venv, not from this checkout
    location = run([str(user / "bin/python"), "-c", "import ci_gate; print(ci_gate.__file__)"], env, cwd=tmp_path)
    assert location.startswith(str(user))
    # the wheel carries the HTML template compiled by its build, and the installed ci-gate renders from it
    which_template = "from ci_gate.reports import html; print(html._template().filename)"
    template = run([str(user / "bin/python"), "-c", which_template], env, cwd=tmp_path)
    assert template.strip() == str(Path(location.strip()).parent / "reports" / "html_compiled.py")
