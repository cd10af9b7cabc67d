"""Peak memory of `ci-gate analyze` on every input of the hostile corpus (tests/support/hostile.py).

Each input is built into a temporary folder, then analysed in its own process
(`python -m ci_gate.cli analyze REF -o json --file OUT --no-cache`); the child's peak resident set
comes from wait4's rusage (ru_maxrss). Printed per input: exit code (and the expected one), peak RSS,
wall time and the first stderr line, cut. The worst peak closes the table. Figures are printed, not
judged here: the target lives in the hardening issue.

    python bench/hostile_rss.py [--only NAME ...] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.hostile import CORPUS, Case  # noqa: E402


def run_case(case: Case, folder: Path) -> tuple[int, float, float, str]:
    """(exit code, peak RSS in MB, seconds, first stderr line) of analysing the case's input."""
    # Built by a child of its own: Linux keeps the parent's high-water mark in a forked child's
    # ru_maxrss, so the builder's memory must never be in the process that measures.
    built = subprocess.run([sys.executable, __file__, "--build", case.name, str(folder)], check=True,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    reference = built.stdout.strip().splitlines()[-1]
    environment = {**os.environ, **case.env, "CI_GATE_CACHE_DIR": str(folder / "cache"),
                   "TMPDIR": str(folder / "tmp"), "PYTHONPATH": str(ROOT)}
    (folder / "tmp").mkdir(exist_ok=True)
    started = time.perf_counter()
    with open(folder / "stderr", "wb") as stderr:
        child = subprocess.Popen([sys.executable, "-m", "ci_gate.cli", "analyze", reference, "-o", "json",
                                  "--file", str(folder / "out.json"), "--no-cache"],
                                 stdout=subprocess.DEVNULL, stderr=stderr, env=environment)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    first_line = (folder / "stderr").read_text(errors="replace").strip().splitlines()[:1]
    return child.returncode, usage.ru_maxrss / 1024, seconds, (first_line[0] if first_line else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="names of the inputs to run")
    parser.add_argument("--keep", action="store_true", help="keep the built inputs")
    parser.add_argument("--build", nargs=2, metavar=("NAME", "FOLDER"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.build:
        name, folder = arguments.build
        print(next(case for case in CORPUS if case.name == name).build(Path(folder)))
        return
    work = Path(tempfile.mkdtemp(prefix="ci-gate-hostile-"))
    worst = (0.0, "")
    print(f"{'input':32} {'exit':>4} {'want':>4} {'peak MB':>8} {'seconds':>8}  stderr")
    try:
        for case in CORPUS:
            if arguments.only and case.name not in arguments.only:
                continue
            folder = work / case.name
            folder.mkdir()
            code, peak, seconds, line = run_case(case, folder)
            worst = max(worst, (peak, case.name))
            print(f"{case.name:32} {code:>4} {case.exit_code:>4} {peak:>8.0f} {seconds:>8.1f}  {line[:100]}",
                  flush=True)
            if not arguments.keep:
                shutil.rmtree(folder)
    finally:
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"worst peak RSS: {worst[0]:.0f} MB ({worst[1]})")


if __name__ == "__main__":
    main()
