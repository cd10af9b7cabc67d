"""The wheel build's one extra step: the HTML report's template compiled to Python, into the wheel.

setuptools runs `BuildPy` (pyproject.toml `[tool.setuptools.cmdclass]`). After the ordinary copy of the
package it writes `ci_gate/reports/html_compiled.py` into the build folder, so an installed ci-gate
renders `gate --html` without compiling the template in every CI job (ci_gate/reports/html_environment.py
says why). The source tree never holds the generated module. The build needs jinja2 for it (in
`build-system.requires` and requirements/build.lock); `ci_gate` itself is not importable at build time,
so the environment module is loaded by its path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools.command.build_py import build_py

ENVIRONMENT_MODULE = Path(__file__).parent / "ci_gate" / "reports" / "html_environment.py"
COMPILED_PATH = Path("ci_gate") / "reports" / "html_compiled.py"


def compiled_html_source() -> str:
    spec = importlib.util.spec_from_file_location("ci_gate_build_html_environment", ENVIRONMENT_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source: str = module.compiled_source()
    return source


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads the source tree, which compiles the template at first use
        target = Path(self.build_lib) / COMPILED_PATH
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(compiled_html_source(), "utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs: list[str] = super().get_outputs(include_bytecode)
        if not self.editable_mode:
            outputs.append(str(Path(self.build_lib) / COMPILED_PATH))
        return outputs
