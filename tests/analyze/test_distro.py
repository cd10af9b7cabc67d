"""Distribution detection from os-release and the classic release files."""

from __future__ import annotations

import pytest

from ci_gate.analyze.distro import detect_distro, parse_os_release
from ci_gate.model import Distro

DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

UBUNTU_2204 = """PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
"""

UBI_9 = """NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
"""

ALPINE = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n"

AMAZON_2 = 'NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2"\n'


def reader(files: dict[str, str | bytes]):  # type: ignore[no-untyped-def]
    def read(path: str) -> bytes | None:
        content = files.get(path)
        return content.encode() if isinstance(content, str) else content

    return read


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"/etc/os-release": DEBIAN_12},
            Distro("debian", "12", "Debian GNU/Linux", "Debian GNU/Linux 12 (bookworm)", "bookworm", (),
                   "/etc/os-release"),
        ),
        (
            {"/usr/lib/os-release": UBUNTU_2204},
            Distro("ubuntu", "22.04", "Ubuntu", "Ubuntu 22.04.4 LTS", "jammy", ("debian",), "/usr/lib/os-release"),
        ),
        (
            {"/etc/os-release": UBI_9, "/etc/redhat-release": "Red Hat Enterprise Linux release 9.3 (Plow)\n"},
            Distro("rhel", "9.3", "Red Hat Enterprise Linux", "Red Hat Enterprise Linux 9.3 (Plow)", "",
                   ("fedora",), "/etc/os-release"),
        ),
        ({"/etc/os-release": ALPINE}, Distro("alpine", "3.19.1", "Alpine Linux", "Alpine Linux v3.19", "", (),
                                              "/etc/os-release")),
        ({"/etc/os-release": AMAZON_2}, Distro("amzn", "2", "Amazon Linux", "", "", ("centos", "rhel", "fedora"),
                                               "/etc/os-release")),
        ({"/etc/alpine-release": "3.18.4\n"},
         Distro("alpine", "3.18.4", "Alpine Linux", source_path="/etc/alpine-release")),
        ({"/etc/debian_version": "11.9\n"},
         Distro("debian", "11", "Debian GNU/Linux", source_path="/etc/debian_version")),
        ({"/etc/debian_version": "trixie/sid\n"},
         Distro("debian", "", "Debian GNU/Linux", version_codename="trixie", source_path="/etc/debian_version")),
        ({"/etc/centos-release": "CentOS Linux release 7.9.2009 (Core)\n"},
         Distro("centos", "7", "CentOS Linux", "CentOS Linux release 7.9.2009 (Core)", "Core", (),
                "/etc/centos-release")),
        ({"/etc/redhat-release": "Red Hat Enterprise Linux Server release 6.10 (Santiago)"},
         Distro("rhel", "6.10", "Red Hat Enterprise Linux Server",
                "Red Hat Enterprise Linux Server release 6.10 (Santiago)", "Santiago", (), "/etc/redhat-release")),
        ({"/etc/system-release": "Amazon Linux AMI release 2018.03"},
         Distro("amzn", "2018.03", "Amazon Linux AMI", "Amazon Linux AMI release 2018.03", "", (),
                "/etc/system-release")),
        ({"/etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\nDISTRIB_CODENAME=trusty\n"
                              'DISTRIB_DESCRIPTION="Ubuntu 14.04.6 LTS"\n', "/etc/debian_version": "jessie/sid"},
         Distro("ubuntu", "14.04", "Ubuntu", "Ubuntu 14.04.6 LTS", "trusty", (), "/etc/lsb-release")),
        ({"/etc/SuSE-release": "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 4\n"},
         Distro("sles", "12.4", "SUSE Linux Enterprise Server 12", "SUSE Linux Enterprise Server 12 (x86_64)", "", (),
                "/etc/SuSE-release")),
        ({"/etc/SuSE-release": "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n"},
         Distro("opensuse", "13.2", "openSUSE 13.2", "openSUSE 13.2 (x86_64)", "Harlequin", (), "/etc/SuSE-release")),
        ({"/bin/busybox": b"\x7fELF\x00\x00junk BusyBox v1.36.1 (2023-11-07 18:53:09 UTC) multi-call binary\x00"},
         Distro("busybox", "1.36.1", "BusyBox", source_path="/bin/busybox")),
        ({}, None),
        ({"/etc/os-release": "# only a comment\n", "/etc/alpine-release": "3.20.0"},
         Distro("alpine", "3.20.0", "Alpine Linux", source_path="/etc/alpine-release")),
        ({"/etc/os-release": 'NAME="Minimal"\n'}, Distro("linux", "", "Minimal", source_path="/etc/os-release")),
    ],
)  # fmt: skip
def test_detect_distro(files: dict[str, str | bytes], expected: Distro | None) -> None:
    assert detect_distro(reader(files)) == expected


def test_os_release_prefers_etc_over_usr_lib() -> None:
    files = {"/etc/os-release": ALPINE, "/usr/lib/os-release": DEBIAN_12}
    distro = detect_distro(reader(files))
    assert distro is not None and distro.id == "alpine"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('A="double \\"quoted\\" \\$dollar \\`tick\\` back\\\\slash"', 'double "quoted" $dollar `tick` back\\slash'),
        ("A='single $x \\n'", "single $x \\n"),
        ("A=bare", "bare"),
        ('A="keep \\n literally"', "keep \\n literally"),
        ("A=value # trailing comment", "value"),
        ('A="has # inside"', "has # inside"),
        ("A=", ""),
        ('A=""', ""),
    ],
)
def test_os_release_quoting(line: str, value: str) -> None:
    assert parse_os_release(line + "\n") == {"A": value}


def test_os_release_ignores_garbage() -> None:
    assert parse_os_release("# c\n\nnot a pair\n9BAD=x\nGOOD=1\n") == {"GOOD": "1"}
