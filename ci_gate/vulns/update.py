"""`db update`: download OSV's per-ecosystem exports (or a mirror's) and import them.

The default source is OSV's public bucket over HTTPS
(`https://osv-vulnerabilities.storage.googleapis.com/<ECOSYSTEM>/all.zip`). An air-gapped site
points `--source` at a mirror with the same layout: an HTTP(S) URL, or a local folder holding
`<ECOSYSTEM>/all.zip` files. Downloads go through the project's HTTP layer (timeouts, retries with
backoff, TLS verification), are streamed to temporary files next to the store, checked (status,
size, zip structure), and only then imported — in one transaction, so a failed update changes
nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

from ci_gate.errors import VulnerabilityDataError
from ci_gate.http import HttpError, new_session, redact_url, send
from ci_gate.vulns.importers.osv import ImportResult, import_paths
from ci_gate.vulns.store import ImportCounts, resolve_path

DEFAULT_SOURCE = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = (
    "Debian", "Ubuntu", "Alpine", "Red Hat", "Rocky Linux", "AlmaLinux", "Wolfi", "Chainguard",
    "PyPI", "npm", "Maven", "Go", "RubyGems", "crates.io", "NuGet", "Packagist",
)
"""What a container image usually holds; `--ecosystem` replaces the list."""
MAX_DOWNLOAD_BYTES = 8 * 1024**3
TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class UpdateOptions:
    source: str = DEFAULT_SOURCE
    ecosystems: tuple[str, ...] = DEFAULT_ECOSYSTEMS
    store_path: Path | None = None
    ca_bundle: str | None = None


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _export_url(source: str, ecosystem: str) -> str:
    return f"{source.rstrip('/')}/{quote(ecosystem)}/all.zip"


def _check_zip(path: Path, where: str) -> None:
    if not zipfile.is_zipfile(path):
        raise VulnerabilityDataError(f"{where} is not a zip archive (a captive portal or a truncated download?)")


def _listed_ecosystems(session: object, source: str) -> set[str] | None:
    """The bucket's ecosystems.txt, or None when the source does not publish one."""
    try:
        response = send(session, "GET", f"{source.rstrip('/')}/ecosystems.txt", timeout=TIMEOUT_SECONDS)  # type: ignore[arg-type]
    except HttpError as error:
        raise VulnerabilityDataError(f"cannot reach the vulnerability data source: {error}") from None
    if response.status_code != 200:
        return None
    return {line.strip() for line in response.text.splitlines() if line.strip()}


def _download(session: object, url: str, target: Path) -> None:
    try:
        response = send(session, "GET", url, timeout=TIMEOUT_SECONDS, stream=True)  # type: ignore[arg-type]
    except HttpError as error:
        raise VulnerabilityDataError(f"download failed: {error}") from None
    with response:
        if response.status_code == 404:
            raise VulnerabilityDataError(f"{redact_url(url)} does not exist (404): is the ecosystem name right?")
        if response.status_code != 200:
            raise VulnerabilityDataError(f"{redact_url(url)} answered HTTP {response.status_code}: try again later "
                                         "or use --source with a mirror")
        expected = response.headers.get("Content-Length")
        written = 0
        try:
            with target.open("wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    written += len(chunk)
                    if written > MAX_DOWNLOAD_BYTES:
                        raise VulnerabilityDataError(f"{redact_url(url)} is larger than {MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
        except requests.RequestException:
            # requests' errors are OSErrors too: this clause must come first.
            raise VulnerabilityDataError(f"the download of {redact_url(url)} broke off: try again") from None
        except OSError as error:
            raise VulnerabilityDataError(f"cannot write the download to {target.parent}: {error.strerror}") from None
    if expected and expected.isdigit() and int(expected) != written:
        raise VulnerabilityDataError(
            f"{redact_url(url)} was cut short ({written} of {expected} bytes): try again")
    _check_zip(target, redact_url(url))


def update(options: UpdateOptions, progress: Callable[[str], None] | None = None,
           import_progress: Callable[[str, ImportCounts], None] | None = None) -> ImportResult:
    """Fetch every requested ecosystem's export, check it, then import all of them in one transaction."""
    if not options.ecosystems:
        raise VulnerabilityDataError("no ecosystem to update: give --ecosystem NAME (e.g. Debian, PyPI)")
    store_path = resolve_path(options.store_path)
    source = options.source
    if not _is_url(source):
        folder = Path(source.removeprefix("file://"))
        if not folder.is_dir():
            raise VulnerabilityDataError(f"--source {source} is neither an http(s) URL nor a folder")
        paths = []
        for ecosystem in options.ecosystems:
            path = folder / ecosystem / "all.zip"
            if not path.is_file():
                raise VulnerabilityDataError(f"{path} is missing: the mirror has no export for {ecosystem!r}")
            _check_zip(path, str(path))
            paths.append(path)
        return import_paths(paths, store_path, progress=import_progress)

    session = new_session(ca_bundle=options.ca_bundle)
    listed = _listed_ecosystems(session, source)
    if listed is not None:
        unknown = [e for e in options.ecosystems if e not in listed]
        if unknown:
            raise VulnerabilityDataError(
                f"unknown ecosystem {', '.join(map(repr, unknown))}: the source lists "
                f"{', '.join(sorted(listed)[:12])}{' ...' if len(listed) > 12 else ''} (names are case-sensitive)")
    store_path.parent.mkdir(parents=True, exist_ok=True)
    downloads: list[Path] = []
    urls: list[str] = []
    try:
        for ecosystem in options.ecosystems:
            url = _export_url(source, ecosystem)
            handle, name = tempfile.mkstemp(prefix=".osv-", suffix=".zip", dir=store_path.parent)
            os.close(handle)
            downloads.append(Path(name))
            if progress:
                progress(f"downloading {redact_url(url)}")
            _download(session, url, Path(name))
            urls.append(redact_url(url))
        return import_paths(downloads, store_path, location_names=urls, progress=import_progress)
    finally:
        for path in downloads:
            with contextlib.suppress(OSError):
                path.unlink()


def default_ecosystems() -> Sequence[str]:
    return DEFAULT_ECOSYSTEMS
