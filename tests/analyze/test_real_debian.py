"""The analysis functions on a real debootstrap bookworm root filesystem, with syft as the oracle."""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci_gate.analyze.distro import detect_distro
from ci_gate.analyze.passwd import parse_group, parse_passwd
from ci_gate.secrets.scanner import SecretScanner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rootfs(debian_rootfs: Path) -> dict[str, tarfile.TarInfo | bytes]:
    """Path → file bytes (regular files up to 64 kB) or TarInfo (links), read from the tar in memory."""
    entries: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(debian_rootfs) as archive:
        for member in archive:
            path = "/" + member.name.lstrip("./")
            if member.isfile() and member.size <= 65536:
                handle = archive.extractfile(member)
                entries[path] = handle.read() if handle is not None else b""
            elif member.issym() or member.islnk():
                entries[path] = member
    return entries


def reader(entries: dict[str, tarfile.TarInfo | bytes]) -> Callable[[str], bytes | None]:
    def read(path: str, depth: int = 0) -> bytes | None:
        entry = entries.get(path)
        if isinstance(entry, tarfile.TarInfo) and depth < 16:
            target = entry.linkname
            if entry.issym() and not target.startswith("/"):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            return read("/" + target.lstrip("./") if entry.islnk() else target, depth + 1)
        return entry if isinstance(entry, bytes) else None

    return read


def test_distro_matches_syft(
    rootfs: dict[str, tarfile.TarInfo | bytes],
    debian_docker_archive: Path,
    syft_json: Callable[..., dict[str, Any]],
) -> None:
    distro = detect_distro(reader(rootfs))
    assert distro is not None
    syft = syft_json(f"docker-archive:{debian_docker_archive}")["distro"]
    assert (distro.id, distro.version_id, distro.version_codename) == (
        syft["id"],
        syft["versionID"],
        syft["versionCodename"],
    )
    assert distro.pretty_name == syft["prettyName"]


def test_accounts(rootfs: dict[str, tarfile.TarInfo | bytes]) -> None:
    read = reader(rootfs)
    passwd, group = read("/etc/passwd"), read("/etc/group")
    assert passwd is not None and group is not None
    users, warnings = parse_passwd(passwd.decode())
    assert warnings == []
    assert len(users) == passwd.decode().count("\n")  # every line is an account
    assert (users[0].name, users[0].uid, users[0].gid, users[0].shell) == ("root", 0, 0, "/bin/bash")
    assert len({user.uid for user in users}) == len(users)
    groups, group_warnings = parse_group(group.decode())
    assert group_warnings == [] and len(groups) == group.decode().count("\n")
    assert ("root", 0) in {(entry.name, entry.gid) for entry in groups}


def test_no_false_secrets_in_a_clean_debian(rootfs: dict[str, tarfile.TarInfo | bytes]) -> None:
    """A stock minbase holds no credentials: every small file scanned, nothing found (CA certs,
    man pages, docs and scripts mention keys and passwords without holding any)."""
    scanner = SecretScanner()
    scanned = [
        (path, content)
        for path, content in rootfs.items()
        if isinstance(content, bytes) and scanner.wants(path, len(content))
    ]
    assert len(scanned) > 2000
    findings = [finding for path, content in scanned for finding in scanner.scan_file(path, 0, content)]
    assert findings == []
    # The same content with one credentials file planted is found, at the right line.
    planted = b"[default]\naws_access_key_id = AKIAQX7ZPL2M9KWBTR4E\n"
    assert [(f.rule, f.line) for f in scanner.scan_file("/root/.aws/credentials", 1, planted)] == [
        ("AWS_ACCESS_KEY", 2)
    ]
