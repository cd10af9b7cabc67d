"""Which Linux distribution an image is: /etc/os-release first, then the classic release files.

`detect_distro` takes a reader, not a filesystem, so it works on the squashed image view, a
directory or a test dictionary alike; the reader resolves symlinks (os-release is usually a link to
../usr/lib/os-release) and returns None for a missing file.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ci_gate.model import Distro

Reader = Callable[[str], "bytes | None"]

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")

_RELEASE_LINE = re.compile(r"^\s*(?P<name>.+?)\s+release\s+(?P<version>[0-9][0-9.]*)\s*(?:\((?P<codename>[^)]*)\))?")
_RELEASE_IDS = (
    ("red hat enterprise linux", "rhel"),
    ("centos stream", "centos"),
    ("centos", "centos"),
    ("fedora", "fedora"),
    ("rocky", "rocky"),
    ("almalinux", "almalinux"),
    ("oracle linux", "ol"),
    ("amazon linux", "amzn"),
    ("scientific linux", "scientific"),
    ("cloudlinux", "cloudlinux"),
)
"""Name prefixes in redhat-release-style files, and the os-release ID each distribution uses."""

_BUSYBOX = re.compile(rb"BusyBox v([0-9][0-9A-Za-z.\-]*)")


def detect_distro(read: Reader) -> Distro | None:
    """The distribution from the files `read` returns, or None when no known file identifies one."""
    for path in OS_RELEASE_PATHS:
        content = read(path)
        if content is not None:
            distro = _from_os_release(_text(content), path)
            if distro is not None:
                return distro
    detectors: tuple[tuple[str, Callable[[str, str], Distro | None]], ...] = (
        ("/etc/alpine-release", _from_alpine_release),
        ("/etc/lsb-release", _from_lsb_release),
        ("/etc/centos-release", _from_redhat_release),
        ("/etc/redhat-release", _from_redhat_release),
        ("/etc/system-release", _from_redhat_release),
        ("/etc/SuSE-release", _from_suse_release),
        ("/etc/debian_version", _from_debian_version),
    )
    for path, detector in detectors:
        content = read(path)
        if content is not None:
            distro = detector(_text(content), path)
            if distro is not None:
                return distro
    busybox = read("/bin/busybox")
    if busybox is not None:
        match = _BUSYBOX.search(busybox)
        if match:
            return Distro(
                id="busybox", version_id=match.group(1).decode("ascii"), name="BusyBox", source_path="/bin/busybox"
            )
    return None


def parse_os_release(text: str) -> dict[str, str]:
    """The variables of an os-release file (os-release(5)): shell-style quoting and escapes, `#` comments."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        values[name] = _shell_value(value.strip())
    return values


def _shell_value(value: str) -> str:
    """Undo the shell quoting os-release(5) allows: "..." with \\ escapes, '...', or a bare word."""
    result: list[str] = []
    quote = ""
    position = 0
    while position < len(value):
        char = value[position]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                result.append(char)
        elif char == "\\" and position + 1 < len(value):
            following = value[position + 1]
            if quote == '"' and following not in '"\\`$':
                result.append(char)  # inside double quotes only \" \\ \` \$ are escapes
            else:
                result.append(following)
                position += 1
        elif char in "\"'" and (not quote or char == quote):
            quote = "" if quote else char
        elif not quote and char == "#" and (position == 0 or value[position - 1].isspace()):
            break  # an unquoted comment after the value
        else:
            result.append(char)
        position += 1
    return "".join(result).strip() if not value.startswith(("'", '"')) else "".join(result)


def _from_os_release(text: str, path: str) -> Distro | None:
    values = parse_os_release(text)
    if not values:
        return None
    return Distro(
        id=(values.get("ID") or "linux").lower(),
        version_id=values.get("VERSION_ID", ""),
        name=values.get("NAME", ""),
        pretty_name=values.get("PRETTY_NAME", ""),
        version_codename=values.get("VERSION_CODENAME", ""),
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
        source_path=path,
    )


def _from_alpine_release(text: str, path: str) -> Distro | None:
    version = text.strip().split()[0] if text.strip() else ""
    if not version:
        return None
    return Distro(id="alpine", version_id=version, name="Alpine Linux", source_path=path)


def _from_debian_version(text: str, path: str) -> Distro | None:
    value = text.strip().split()[0] if text.strip() else ""
    if not value:
        return None
    if value[0].isdigit():
        return Distro(id="debian", version_id=value.split(".")[0], name="Debian GNU/Linux", source_path=path)
    # testing/unstable write a codename such as "trixie/sid"
    return Distro(id="debian", name="Debian GNU/Linux", version_codename=value.split("/")[0], source_path=path)


def _from_lsb_release(text: str, path: str) -> Distro | None:
    values = parse_os_release(text)
    identifier = values.get("DISTRIB_ID", "").strip().lower()
    if not identifier:
        return None
    return Distro(
        id=identifier,
        version_id=values.get("DISTRIB_RELEASE", ""),
        name=values.get("DISTRIB_ID", ""),
        pretty_name=values.get("DISTRIB_DESCRIPTION", ""),
        version_codename=values.get("DISTRIB_CODENAME", ""),
        source_path=path,
    )


def _from_redhat_release(text: str, path: str) -> Distro | None:
    first = text.strip().splitlines()[0] if text.strip() else ""
    match = _RELEASE_LINE.match(first)
    if not match:
        return None
    name = match.group("name").strip()
    lowered = name.lower()
    identifier = next((value for prefix, value in _RELEASE_IDS if lowered.startswith(prefix)), "")
    if not identifier:
        identifier = re.sub(r"[^a-z0-9]+", "", lowered.split()[0]) or "linux"
    version = match.group("version")
    if identifier == "centos":
        version = version.split(".")[0]  # CentOS's os-release VERSION_ID is the major release
    return Distro(
        id=identifier,
        version_id=version,
        name=name,
        pretty_name=first.strip(),
        version_codename=(match.group("codename") or "").strip(),
        source_path=path,
    )


def _from_suse_release(text: str, path: str) -> Distro | None:
    lines = text.strip().splitlines()
    if not lines:
        return None
    values = {}
    for line in lines[1:]:
        name, separator, value = line.partition("=")
        if separator:
            values[name.strip().upper()] = value.strip()
    title = lines[0].strip()
    identifier = "opensuse" if title.lower().startswith("opensuse") else "sles"
    version = values.get("VERSION", "")
    if values.get("PATCHLEVEL", "0") not in ("", "0"):
        version = f"{version}.{values['PATCHLEVEL']}"
    return Distro(
        id=identifier,
        version_id=version,
        name=re.sub(r"\s*\(.*\)\s*$", "", title),
        pretty_name=title,
        version_codename=values.get("CODENAME", ""),
        source_path=path,
    )


def _text(content: bytes) -> str:
    return content.decode("utf-8", errors="replace")
