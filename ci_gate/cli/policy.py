"""`ci-gate policy ...`: validate, show, gates, test. Parses arguments and delegates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ci_gate.errors import PolicyError

app = typer.Typer(help="Policy documents: validate, show the built-in packs, list gates, run policy tests.",
                  no_args_is_help=True)


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="A policy file (v2 policy or v1 bundle, JSON or YAML) or builtin:NAME.")],
) -> None:
    """Check a policy document; exit 0 when valid, 2 when not (each problem as FILE:LINE:COLUMN)."""
    from ci_gate.policy.documents import check_policy

    policy, problems = check_policy(file, strict=True)
    for problem in problems:
        typer.echo(problem.render(file), err=True)
    if policy is None or any(p.severity == "error" for p in problems):
        errors = sum(1 for p in problems if p.severity == "error")
        typer.echo(f"{file}: invalid ({errors} error{'s' if errors != 1 else ''})", err=True)
        raise typer.Exit(2)
    rules = sum(len(r.rules) for r in policy.rule_sets)
    converted = " (legacy v1 bundle, converted)" if policy.original_format == "v1" else ""
    typer.echo(f"{file}: valid{converted}: {len(policy.rule_sets)} rule set(s), {rules} rule(s), "
               f"{len(policy.mappings)} mapping(s), {len(policy.allowlists)} allowlist(s)")


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="builtin:NAME (dod, cis, default) or a policy file.")],
) -> None:
    """Print a policy document so a team can copy and adapt it."""
    from ci_gate.policy.documents import read_source

    if not name.startswith("builtin:") and not Path(name).exists():
        name = "builtin:" + name
    text, _ = read_source(name)
    typer.echo(text, nl=False)


@app.command()
def gates(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown reference (docs/policy.md).")
    ] = False,
) -> None:
    """Every gate, trigger and parameter with its description."""
    from ci_gate.policy.reference import gates_markdown, gates_text

    typer.echo(gates_markdown() if markdown else gates_text(), nl=False)


@app.command("test")
def test_command(
    directory: Annotated[Path, typer.Argument(help="A folder of policy test files (*.yaml): see docs/policy.md.")],
) -> None:
    """Run policy unit tests; exit 1 when a case does not get its expected result, 2 on bad input."""
    from ci_gate.policy.testing import run_directory

    if not directory.exists():
        raise PolicyError(f"policy test folder {directory} does not exist")
    results = run_directory(directory)
    failed = [r for r in results if not r.passed]
    for result in results:
        typer.echo(f"{'PASS' if result.passed else 'FAIL'}  {result.name}")
        if not result.passed:
            for line in result.diff:
                typer.echo(f"      {line}")
    typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if not results:
        raise PolicyError(f"no policy test cases found in {directory} (expected *.yaml files with a 'cases' list)")
    if failed:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Mount the `policy` group on the root app (ci_gate.cli.COMMANDS)."""
    root.add_typer(app, name="policy")
