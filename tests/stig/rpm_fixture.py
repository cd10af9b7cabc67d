"""A minimal RHEL 8 root filesystem whose rpm database is real.

No RHEL image can be pulled here, so the SCAP Security Guide's RHEL 8 platform check (the
`redhat-release` package at version 8.x, read by OpenSCAP's rpminfo probe) is satisfied honestly:
RPMs are built with rpmbuild and installed with `rpm --root`. Outcomes are set up on purpose: the
`telnet-server` package installed, a world-writable directory without the sticky bit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SPEC = """\
Name: {name}
Version: {version}
Release: 1.el8
Summary: ci-gate test fixture package {name}
License: MIT
BuildArch: noarch
%description
Test fixture for ci-gate's STIG tests.
%install
{install}
%files
{files}
"""

PACKAGES = {
    "redhat-release": ("8.9", {
        "/etc/redhat-release": "Red Hat Enterprise Linux release 8.9 (Ootpa)\n",
        "/etc/os-release": 'NAME="Red Hat Enterprise Linux"\nVERSION="8.9 (Ootpa)"\nID="rhel"\n'
                           'ID_LIKE="fedora"\nVERSION_ID="8.9"\nPRETTY_NAME="Red Hat Enterprise Linux 8.9 (Ootpa)"\n',
    }),
    "telnet-server": ("0.17", {"/usr/sbin/in.telnetd": "#!/bin/sh\nexit 0\n"}),
}


def _build_rpm(work: Path, name: str, version: str, files: dict[str, str]) -> Path:
    install = []
    for path, content in files.items():
        source = work / "sources" / name / path.lstrip("/")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(content)
        install.append(f"mkdir -p %{{buildroot}}{path.rsplit('/', 1)[0]} && cp {source} %{{buildroot}}{path}")
    spec = work / f"{name}.spec"
    spec.write_text(SPEC.format(name=name, version=version, install="\n".join(install), files="\n".join(files)))
    subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {work / 'rpmbuild'}",
                    "--define", "_binary_payload w.gzdio", str(spec)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return next((work / "rpmbuild" / "RPMS" / "noarch").glob(f"{name}-{version}-*.rpm"))


def build_rhel8_rootfs(work: Path) -> Path:
    """The root directory: RHEL 8 release files and telnet-server from real RPMs, a real rpmdb."""
    root = work / "rootfs"
    for directory in ("etc", "usr/sbin", "usr/bin", "var/lib/rpm", "tmp", "root", "srv/shared"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    rpms = [_build_rpm(work, name, version, files) for name, (version, files) in PACKAGES.items()]
    subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--initdb"], check=True,
                   capture_output=True)
    subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-ivh", "--nodeps", "--noscripts",
                    *map(str, rpms)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/shadow").chmod(0o000)
    (root / "tmp").chmod(0o1777)
    (root / "srv/shared").chmod(0o777)  # world-writable without the sticky bit: set up to fail
    return root
