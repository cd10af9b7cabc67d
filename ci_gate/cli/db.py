"""`ci-gate db`: the offline vulnerability store — import files, update from OSV or a mirror, status.

Parsing and printing only; the work is in `ci_gate.vulns`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the store is imported by the commands that use it: every ci-gate run loads this module
    from ci_gate.vulns.store import ImportCounts

app = typer.Typer(help="The offline vulnerability store: import OSV data, update it, show its status.",
                  no_args_is_help=True, add_completion=False)

VulnDbOption = Annotated[
    Path | None,
    typer.Option("--vuln-db", help="The store file (default: $CI_GATE_VULN_DB, else "
                 "$XDG_DATA_HOME/ci-gate/vulns.sqlite)."),
]
EcosystemOption = Annotated[
    list[str] | None,
    typer.Option("--ecosystem", help="Only this OSV ecosystem (repeatable), e.g. Debian, Alpine, PyPI, npm."),
]


def _summary(location: str, counts: ImportCounts) -> None:
    line = (f"{location}: {counts.read} records ({counts.added} new, {counts.updated} updated, "
            f"{counts.unchanged} unchanged), {counts.skipped} skipped")
    if counts.unknown_ecosystems:
        line += f", {counts.unknown_ecosystems} entries in ecosystems without a version scheme"
    typer.echo(line, err=True)
    for problem in (counts.problems or [])[:5]:
        typer.echo(f"  skipped: {problem}", err=True)


@app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="OSV all.zip files, folders of OSV JSON, or .json files "
                                                 "(CISA's known_exploited_vulnerabilities.json too).")],
    vuln_db: VulnDbOption = None,
    ecosystem: EcosystemOption = None,
) -> None:
    """Import OSV data as published (all in one transaction: a failure changes nothing)."""
    from ci_gate.vulns.importers.osv import import_paths

    result = import_paths(paths, vuln_db, ecosystems=tuple(ecosystem or ()), progress=_summary)
    total = result.total
    typer.echo(f"imported into {result.store_path}: {total.added} new, {total.updated} updated, "
               f"{total.unchanged} unchanged, {total.skipped} skipped")


@app.command("update")
def update_command(
    source: Annotated[
        str | None, typer.Option("--source", help="Mirror URL or folder laid out as OSV's bucket "
                                    "(<ECOSYSTEM>/all.zip). Default: OSV's public bucket.")
    ] = None,
    ecosystem: EcosystemOption = None,
    vuln_db: VulnDbOption = None,
    ca_bundle: Annotated[Path | None, typer.Option("--ca-bundle", help="CA bundle for the mirror's TLS.")] = None,
) -> None:
    """Download the OSV exports and import them."""
    from ci_gate.vulns.update import DEFAULT_ECOSYSTEMS, DEFAULT_SOURCE, UpdateOptions, update

    options = UpdateOptions(
        source=source or DEFAULT_SOURCE,
        ecosystems=tuple(ecosystem or DEFAULT_ECOSYSTEMS),
        store_path=vuln_db,
        ca_bundle=str(ca_bundle) if ca_bundle else None,
    )
    result = update(options, progress=lambda line: typer.echo(line, err=True), import_progress=_summary)
    total = result.total
    typer.echo(f"updated {result.store_path}: {total.added} new, {total.updated} updated, "
               f"{total.unchanged} unchanged, {total.skipped} skipped")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never updated"
    days, rest = divmod(int(seconds), 86400)
    hours = rest // 3600
    return f"{days}d {hours}h" if days else f"{hours}h {rest % 3600 // 60}m"


@app.command("status")
def status_command(
    vuln_db: VulnDbOption = None,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json.")] = "table",
) -> None:
    """Show the store: when it was built and updated, its sources, counts per ecosystem, age."""
    from ci_gate.model import to_dict
    from ci_gate.vulns.store import VulnerabilityStore

    with VulnerabilityStore(vuln_db) as store:
        status = store.status()
    age = status.age_seconds(datetime.now(timezone.utc))
    if output == "json":
        json.dump({**to_dict(status), "age_seconds": age}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    typer.echo(f"store:          {status.path} ({status.size_bytes / 1e6:.1f} MB, schema {status.schema_version})")
    typer.echo(f"built:          {status.built_at}")
    typer.echo(f"last update:    {status.updated_at or 'never'} (age {_age(age)})")
    typer.echo(f"newest record:  {status.newest_modified or '-'}")
    typer.echo(f"records:        {status.vulnerability_count} ({status.withdrawn_count} withdrawn)")
    kev = (f"{status.kev_catalog_version} (released {status.kev_date_released}), {status.kev_count} CVEs"
           if status.kev_catalog_version else "not imported (`ci-gate db import known_exploited_vulnerabilities.json`)")
    typer.echo(f"CISA KEV:       {kev}")
    typer.echo("sources:")
    for source in status.sources:
        typer.echo(f"  {source.location}  imported {source.imported_at}, {source.records} records, "
                   f"{source.skipped} skipped")
    typer.echo("ecosystems:")
    for name, count in status.ecosystems:
        typer.echo(f"  {name:<40} {count}")


def register(root: typer.Typer) -> None:
    """Mount the `db` group on the root app (ci_gate.cli.COMMANDS)."""
    root.add_typer(app, name="db")
