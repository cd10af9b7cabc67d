"""packages: required packages, denied packages, and package-database verification."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.ecosystems import version_scheme_of
from ci_gate.policy.gates._common import (
    CannotCompareVersions,
    compare_versions,
    could_not_compare,
    name_version_denylist,
    packages_by_name,
)
from ci_gate.policy.gates.files import full_path
from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec


def _first_layer(package: object) -> int | None:
    locations = getattr(package, "locations", ())
    return locations[0].layer_index if locations else None


def _required(call: TriggerInput) -> Iterator[Fired]:
    name = call.params["name"]
    version = call.params.get("version")
    comparison = call.params.get("version_match_type", "exact")
    found = packages_by_name(call.context).get(name, [])
    if found:
        package = found[0]
        if version is None:
            return
        if comparison == "exact":
            if package.version != version:
                # anchore-engine prints the name where the version is meant; kept for identical ids.
                yield Fired(
                    message=f"Required input package ({package.name}) is present ({package.version}), "
                    f"but not at the version specified in policy ({name})",
                    layer_index=_first_layer(package),
                )
        elif package.version != version:
            try:
                older = compare_versions(version_scheme_of(package.type), package.version, version) < 0
            except CannotCompareVersions as error:
                yield could_not_compare("packages", "required_package", error)
                return
            if not older:
                return
            yield Fired(
                message=f"Required min-version input package ({package.name}) is present "
                f"({package.version}), but is lower version than what is specified in policy ({version})",
                layer_index=_first_layer(package),
            )
        return
    if version:
        yield Fired(message=f"Required input package ({name},{version}) is not present in container image")
    else:
        yield Fired(message=f"Required input package ({name}) is not present in container image")


def _denylist(call: TriggerInput) -> Iterator[Fired]:
    name = call.params["name"]
    version = call.params.get("version")
    for package in packages_by_name(call.context).get(name, []):
        if version:
            if package.version == version:
                yield Fired(
                    message=f"Package is blacklisted: {package.name}-{package.version}",
                    layer_index=_first_layer(package),
                )
        else:
            yield Fired(message=f"Package is blacklisted: {package.name}", layer_index=_first_layer(package))


def _verify(call: TriggerInput) -> Iterator[Fired]:
    """Files a package database lists that are missing (or changed in mode) in the image.

    Uses the package's `metadata["files"]` (path, optional mode) as recorded by the cataloger; the
    analysis records no file digests, so content changes cannot be seen.
    """
    only_packages = set(call.params.get("only_packages", []))
    directories = call.params.get("only_directories", [])
    check = call.params.get("check")
    present = {full_path(f.path): f for f in call.context.analysis.files}
    for package in call.context.analysis.packages:
        if only_packages and package.name not in only_packages:
            continue
        for entry in package.metadata.get("files", ()) or ():
            path = entry.get("path") if isinstance(entry, dict) else str(entry)
            if not path:
                continue
            if directories and not any(path.startswith(d) for d in directories):
                continue
            record = present.get(full_path(path))
            status = None
            if record is None:
                status = "missing"
            elif isinstance(entry, dict) and entry.get("mode") and record.kind in ("file", "dir"):
                db_mode = oct(int(str(entry["mode"]), 8))[2:]
                fs_mode = oct(record.mode)[2:]
                width = min(len(db_mode), len(fs_mode))
                if db_mode[-width:] != fs_mode[-width:]:
                    status = "changed"
            if status and (check is None or check == status):
                yield Fired(
                    message=f"VERIFY check against package db for package '{package.name}' failed on "
                    f"entry '{path}' with status: '{status}'",
                    path=path,
                )


GATE = GateSpec(
    name="packages",
    description="Distro package checks",
    triggers=(
        TriggerSpec(
            name="required_package",
            description="Triggers if the specified package and optionally a specific version is not found in "
            "the image.",
            evaluate=_required,
            parameters=(
                ParameterSpec(
                    "name",
                    "string",
                    "Name of package that must be found installed in image.",
                    required=True,
                    example="libssl",
                ),
                ParameterSpec(
                    "version",
                    "string",
                    "Optional version of package for exact version match.",
                    example="1.10.3rc3",
                ),
                ParameterSpec(
                    "version_match_type",
                    "EnumString",
                    "The type of comparison to use for version if a version is provided.",
                    allowed_values=("exact", "minimum"),
                    example="exact",
                    default="exact",
                ),
            ),
        ),
        TriggerSpec(
            name="verify",
            description="Check package integrity against package db in the image. Triggers for changes or "
            'removal or content in all or the selected "dirs" parameter if provided, and can filter type of '
            'check with the "check_only" parameter.',
            evaluate=_verify,
            parameters=(
                ParameterSpec(
                    "only_packages",
                    "CommaDelimitedStringList",
                    "List of package names to limit verification.",
                    example="libssl,openssl",
                ),
                ParameterSpec(
                    "only_directories",
                    "CommaDelimitedStringList",
                    "List of directories to limit checks so as to avoid checks on all dir.",
                    example="/usr,/var/lib",
                ),
                ParameterSpec(
                    "check",
                    "EnumString",
                    "Check to perform instead of all.",
                    allowed_values=("changed", "missing"),
                    example="changed",
                ),
            ),
        ),
        name_version_denylist(
            "denylist",
            "Triggers if the evaluated image has a package installed that matches the named package optionally with "
            "a specific version as well.",
            _denylist,
            "Package name to deny.",
            "openssh-server",
            "Specific version of package to deny.",
            "1.0.1",
        ),
    ),
)
