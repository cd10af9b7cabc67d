"""RPM packages (RHEL, UBI, Fedora, CentOS, Rocky, Alma, Amazon Linux, SUSE, Mariner), as syft's
rpm-db-cataloger: the rpm database in any of its three backends (`rpm_db`), each header parsed in
pure Python (`rpm_header`), and the CBL-Mariner distroless manifest
`/var/lib/rpmmanifest/container-manifest-2`.

The version is `[EPOCH:]VERSION-RELEASE`; the purl
`pkg:rpm/<distro id, rhel written redhat>/NAME@VERSION-RELEASE?arch=..&distro=..&epoch=..&upstream=SRPM`.
"""

from __future__ import annotations

from ci_gate.analyze.catalogers import attribution
from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.package_url import package_url as build_package_url
from ci_gate.analyze.catalogers.rpm_db import read_database
from ci_gate.analyze.catalogers.rpm_header import HeaderError, RpmHeader, parse_header
from ci_gate.model import Distro, Package

MANIFEST_SUFFIX = "/rpmmanifest/container-manifest-2"


def full_version(header: RpmHeader) -> str:
    base = f"{header.version}-{header.release}"
    return f"{header.epoch}:{base}" if header.epoch is not None else base


def package_url(header: RpmHeader, distro: Distro | None) -> str:
    namespace = distro.id if distro and distro.id else ""
    if namespace == "rhel":
        namespace = "redhat"
    qualifiers = {
        "arch": header.arch,
        "epoch": str(header.epoch) if header.epoch is not None else "",
        "upstream": header.source_rpm,
        "distro": attribution.distro_label(distro),
    }
    return build_package_url("rpm", namespace, header.name, f"{header.version}-{header.release}",
                             sorted((key, value) for key, value in qualifiers.items() if value))


def parse_manifest(text: str, problems: list[str]) -> list[RpmHeader]:
    """CBL-Mariner's container manifest: one tab-separated line per package."""
    headers = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 10 or parts[1].count("-") < 1:
            problems.append(f"line {number}: expected 10 tab-separated fields")
            continue
        version, _, release = parts[1].rpartition("-")
        epoch = int(parts[8]) if parts[8].isdigit() and parts[5] != "(none)" else None
        headers.append(
            RpmHeader(
                name=parts[0],
                version=version,
                release=release,
                epoch=epoch,
                arch=parts[7],
                source_rpm=parts[9],
                vendor=parts[4],
                size=int(parts[6]) if parts[6].isdigit() else None,
            )
        )
    return headers


class RpmCataloger(attribution.FileVersionsCataloger):
    name = "rpm-db-cataloger"
    patterns = (
        *(
            f"*/{folder}/rpm/{database}"
            for folder in ("var/lib", "usr/share", "usr/lib/sysimage")
            for database in ("Packages", "Packages.db", "rpmdb.sqlite")
        ),
        "*" + MANIFEST_SUFFIX,
    )
    max_bytes = 512 * 1024 * 1024

    def _headers(self, item: Evidence, problems: list[str]) -> list[RpmHeader]:
        if item.path.endswith(MANIFEST_SUFFIX):
            return parse_manifest(attribution.decode(item.content), problems)
        read = read_database(item.content)
        problems.extend(read.problems)
        headers = []
        for blob in read.blobs:
            try:
                headers.append(parse_header(blob))
            except HeaderError as error:
                problems.append(f"a package header cannot be read ({error})")
        return headers


    def catalog_file(self, path: str, versions: list[Evidence], context: CatalogContext) -> list[Package]:
        """The packages of one database file (every version of it, for attribution)."""
        packages: list[Package] = []
        distro = context.distro
        history: list[tuple[int, dict[tuple[str, str], str]]] = []
        final_headers: list[RpmHeader] = []
        for item in versions:
            problems: list[str] = []
            is_final = item is versions[-1]
            headers = self._headers(item, problems)
            keyed = {(header.name, header.arch): full_version(header) for header in headers}
            history.append((item.layer_index, keyed))
            if is_final:
                final_headers = headers
                attribution.truncation_warning(context, self.name, item)
                if problems:
                    context.warnings.append(
                        f"{self.name}: {path} (layer {item.layer_index + 1}): {problems[0]}"
                        + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else "")
                        + f"; {len(headers)} packages were read"
                    )
        introduced = attribution.introduced_layers(history)

        def build(header: RpmHeader) -> list[Package]:
            layer_index = introduced.get((header.name, header.arch), versions[-1].layer_index)
            return [
                Package(
                    name=header.name,
                    version=full_version(header),
                    type="rpm",
                    purl=package_url(header, distro),
                    licenses=(header.license,) if header.license else (),
                    locations=(attribution.location(context, path, layer_index),),
                    found_by=self.name,
                    metadata={
                        "name": header.name,
                        "version": header.version,
                        "release": header.release,
                        "epoch": header.epoch,
                        "architecture": header.arch,
                        "source_rpm": header.source_rpm,
                        "source": _source_name(header.source_rpm) or header.name,
                        "vendor": header.vendor,
                        "size": header.size,
                        "modularity_label": header.modularity_label,
                        "provides": list(header.provides),
                        "requires": list(header.requires),
                        **attribution.distro_metadata(distro),
                    },
                )
            ]

        packages.extend(attribution.each_entry(context, self.name, path, final_headers, build))
        return packages



def _source_name(source_rpm: str) -> str:
    """`openssl-3.0.7-27.el9.src.rpm` → `openssl` (name is everything before version-release)."""
    stem = source_rpm.removesuffix(".rpm")
    stem = stem.rsplit(".", 1)[0] if stem.endswith((".src", ".nosrc")) else stem
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else ""
