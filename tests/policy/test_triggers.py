"""Every trigger: fires, does not fire, and parameter edge cases — on analyses built directly.

Expected messages are anchore-engine's texts, byte for byte, because the md5 trigger ids that
allowlists match are computed from them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ci_gate.model import (
    ContentMatch,
    Distro,
    EnvVar,
    FileRecord,
    HistoryEntry,
    ImageConfig,
    Location,
    Package,
    SecretFinding,
    UserEntry,
)
from tests.policy.helpers import analysis, dockerfile, fire, identity, messages

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "app:x:1000:1000::/home/app:/bin/sh\n"
)
TOOR = "toor:x:0:0::/root:/bin/sh"
USERS = (UserEntry("root", 0, 0), UserEntry("app", 1000, 1000), UserEntry("toor", 0, 0))


def _pkg(
    name: str, version: str, type_: str = "deb", licenses: tuple[str, ...] = (), layer: int = 1, **metadata: Any
) -> Package:
    return Package(
        name, version, type_, licenses=licenses, locations=(Location("/var/lib/dpkg/status", layer),), metadata=metadata
    )


PACKAGES = (
    _pkg("openssl", "3.0.11-1~deb12u2", licenses=("Apache-2.0",), layer=0),
    _pkg("bash", "5.2.15-2+b2", licenses=("GPL-3.0-or-later",), layer=0),
    _pkg("left-pad", "1.3.0", "npm", licenses=("WTFPL",)),
    _pkg("rails", "7.1.0", "gem", licenses=("MIT",)),
)

CASES: list[tuple[str, str, str, dict[str, str] | None, Any, list[str]]] = [
    # always
    ("always fires", "always", "always", None, analysis(), ["Unconditional trigger match"]),
    # dockerfile/instruction
    (
        "instruction = fires",
        "dockerfile",
        "instruction",
        {"instruction": "FROM", "check": "=", "value": "scratch"},
        analysis(dockerfile=dockerfile("FROM scratch")),
        ["Dockerfile directive 'FROM' check '=' matched against 'scratch' for line 'scratch'"],
    ),
    (
        "instruction = other value",
        "dockerfile",
        "instruction",
        {"instruction": "FROM", "check": "=", "value": "x"},
        analysis(dockerfile=dockerfile("FROM scratch")),
        [],
    ),
    (
        "instruction not_exists fires",
        "dockerfile",
        "instruction",
        {"instruction": "HEALTHCHECK", "check": "not_exists"},
        analysis(dockerfile=dockerfile("FROM scratch")),
        ["Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check"],
    ),
    (
        "instruction not_exists present",
        "dockerfile",
        "instruction",
        {"instruction": "HEALTHCHECK", "check": "not_exists"},
        analysis(dockerfile=dockerfile("FROM scratch", "HEALTHCHECK CMD true")),
        [],
    ),
    (
        "instruction exists",
        "dockerfile",
        "instruction",
        {"instruction": "RUN", "check": "exists"},
        analysis(dockerfile=dockerfile("FROM x", "RUN make")),
        ["Dockerfile directive 'RUN' check 'exists' matched against '' for line 'make'"],
    ),
    (
        "instruction like is re.match",
        "dockerfile",
        "instruction",
        {"instruction": "FROM", "check": "like", "value": "debian"},
        analysis(dockerfile=dockerfile("FROM docker.io/debian:12")),
        [],
    ),
    (
        "instruction not_like",
        "dockerfile",
        "instruction",
        {"instruction": "FROM", "check": "not_like", "value": ".*@sha256:.*"},
        analysis(dockerfile=dockerfile("FROM debian:12")),
        ["Dockerfile directive 'FROM' check 'not_like' matched against '.*@sha256:.*' for line 'debian:12'"],
    ),
    (
        "instruction in splits on commas",
        "dockerfile",
        "instruction",
        {"instruction": "USER", "check": "in", "value": "root, 0"},
        analysis(dockerfile=dockerfile("USER 0")),
        ["Dockerfile directive 'USER' check 'in' matched against 'root, 0' for line '0'"],
    ),
    (
        "instruction without dockerfile",
        "dockerfile",
        "instruction",
        {"instruction": "RUN", "check": "exists"},
        analysis(),
        [],
    ),
    (
        "instruction actual_dockerfile_only skips guessed",
        "dockerfile",
        "instruction",
        {"instruction": "RUN", "check": "exists", "actual_dockerfile_only": "true"},
        analysis(dockerfile=dockerfile("RUN make", mode="guessed")),
        [],
    ),
    (
        "instruction guessed evaluated by default",
        "dockerfile",
        "instruction",
        {"instruction": "RUN", "check": "exists"},
        analysis(dockerfile=dockerfile("RUN make", mode="guessed")),
        ["Dockerfile directive 'RUN' check 'exists' matched against '' for line 'make'"],
    ),
    # dockerfile/effective_user
    (
        "effective_user no USER is root",
        "dockerfile",
        "effective_user",
        {"users": "root", "type": "blacklist"},
        analysis(dockerfile=dockerfile("FROM x")),
        ["User root found as effective user, which is explicity not allowed"],
    ),
    (
        "effective_user last USER wins",
        "dockerfile",
        "effective_user",
        {"users": "root", "type": "denylist"},
        analysis(dockerfile=dockerfile("USER root", "USER app")),
        [],
    ),
    (
        "effective_user 0 is root (divergence)",
        "dockerfile",
        "effective_user",
        {"users": "root", "type": "denylist"},
        analysis(dockerfile=dockerfile("USER 0")),
        ["User 0 found as effective user, which is explicity not allowed"],
    ),
    (
        "effective_user 0:0 is root",
        "dockerfile",
        "effective_user",
        {"users": "root", "type": "denylist"},
        analysis(dockerfile=dockerfile("USER 0:0")),
        ["User 0:0 found as effective user, which is explicity not allowed"],
    ),
    (
        "effective_user root:root is root",
        "dockerfile",
        "effective_user",
        {"users": "root", "type": "denylist"},
        analysis(dockerfile=dockerfile("USER root:root")),
        ["User root:root found as effective user, which is explicity not allowed"],
    ),
    (
        "effective_user uid-0 user is root",
        "dockerfile",
        "effective_user",
        {"users": "root", "type": "denylist"},
        analysis(dockerfile=dockerfile("USER toor"), users=USERS),
        ["User toor found as effective user, which is explicity not allowed"],
    ),
    (
        "effective_user allowlist",
        "dockerfile",
        "effective_user",
        {"users": "app", "type": "whitelist"},
        analysis(dockerfile=dockerfile("USER nobody")),
        ["User nobody found as effective user, which is not on the allowed list"],
    ),
    (
        "effective_user allowlisted user",
        "dockerfile",
        "effective_user",
        {"users": "app,web", "type": "allowlist"},
        analysis(dockerfile=dockerfile("USER web")),
        [],
    ),
    # dockerfile/exposed_ports
    (
        "exposed_ports denylist",
        "dockerfile",
        "exposed_ports",
        {"ports": "22,80", "type": "blacklist"},
        analysis(dockerfile=dockerfile("EXPOSE 22/tcp 8080")),
        ["Dockerfile exposes port (22/tcp) which is in policy file DENIEDPORTS list"],
    ),
    (
        "exposed_ports denylist udp",
        "dockerfile",
        "exposed_ports",
        {"ports": "53", "type": "denylist"},
        analysis(dockerfile=dockerfile("EXPOSE 53/udp")),
        ["Dockerfile exposes port (53/udp) which is in policy file DENIEDPORTS list"],
    ),
    (
        "exposed_ports denylist 0 denies all (divergence)",
        "dockerfile",
        "exposed_ports",
        {"ports": "0", "type": "denylist"},
        analysis(dockerfile=dockerfile("EXPOSE 8080 9090")),
        ["Dockerfile exposes network ports but policy sets DENIEDPORTS=0: ['8080', '9090']"],
    ),
    (
        "exposed_ports allowlist",
        "dockerfile",
        "exposed_ports",
        {"ports": "8080", "type": "whitelist"},
        analysis(dockerfile=dockerfile("EXPOSE 8080/tcp 9090")),
        ["Dockerfile exposes port (9090) which is not in policy file ALLOWEDPORTS list"],
    ),
    (
        "exposed_ports nothing exposed",
        "dockerfile",
        "exposed_ports",
        {"ports": "22", "type": "denylist"},
        analysis(dockerfile=dockerfile("FROM x")),
        [],
    ),
    # dockerfile/no_dockerfile_provided
    (
        "no_dockerfile guessed",
        "dockerfile",
        "no_dockerfile_provided",
        None,
        analysis(dockerfile=dockerfile("RUN x", mode="guessed")),
        ["Image was not analyzed with an actual Dockerfile"],
    ),
    (
        "no_dockerfile actual",
        "dockerfile",
        "no_dockerfile_provided",
        None,
        analysis(dockerfile=dockerfile("RUN x")),
        [],
    ),
    # files
    (
        "suid fires with Anchore's mode",
        "files",
        "suid_or_guid_set",
        None,
        analysis(files=(FileRecord("/usr/bin/su", "file", 0o4755), FileRecord("/usr/bin/ls", "file", 0o755))),
        ["SUID or SGID found set on file /usr/bin/su. Mode: 0o104755"],
    ),
    (
        "sgid directory counts as in Anchore",
        "files",
        "suid_or_guid_set",
        None,
        analysis(files=(FileRecord("/var/mail", "dir", 0o2775),)),
        ["SUID or SGID found set on file /var/mail. Mode: 0o42775"],
    ),
    ("suid none", "files", "suid_or_guid_set", None, analysis(files=(FileRecord("/bin/ls", "file", 0o755),)), []),
    (
        "name_match",
        "files",
        "name_match",
        {"regex": r".*\.pem$"},
        analysis(files=(FileRecord("/etc/ssl/key.pem", "file", 0o600), FileRecord("/etc/ssl/key.txt", "file", 0o600))),
        [r"Application of regex matched file found in container: file=/etc/ssl/key.pem regexp=.*\.pem$"],
    ),
    (
        "name_match is anchored at the start",
        "files",
        "name_match",
        {"regex": "key"},
        analysis(files=(FileRecord("/etc/key", "file", 0o600),)),
        [],
    ),
    (
        "attribute_match mode equals",
        "files",
        "attribute_match",
        {"filename": "/etc/shadow", "mode": "00640"},
        analysis(files=(FileRecord("/etc/shadow", "file", 0o640),)),
        ["filename=/etc/shadow and mode=0o640 op=equals specified_mode=0o640"],
    ),
    (
        "attribute_match mode not_equals holds",
        "files",
        "attribute_match",
        {"filename": "/etc/shadow", "mode": "00600", "mode_op": "not_equals"},
        analysis(files=(FileRecord("/etc/shadow", "file", 0o640),)),
        ["filename=/etc/shadow and mode=0o640 op=not_equals specified_mode=0o600"],
    ),
    (
        "attribute_match missing skipped by default",
        "files",
        "attribute_match",
        {"filename": "/nope", "mode": "644"},
        analysis(),
        [],
    ),
    (
        "attribute_match missing skip_missing false",
        "files",
        "attribute_match",
        {"filename": "/nope", "skip_missing": "false"},
        analysis(),
        ["filename=/nope and skip_missing=False"],
    ),
    (
        "content_regex_match any",
        "files",
        "content_regex_match",
        None,
        analysis(content_matches=(ContentMatch("PASSWORD=(?i)password", "/app/config.ini", 3, 1),)),
        ["File content analyzer found regexp match in container: file=/app/config.ini regexp=PASSWORD=(?i)password"],
    ),
    (
        "content_regex_match by name",
        "files",
        "content_regex_match",
        {"regex_name": "OTHER"},
        analysis(content_matches=(ContentMatch("PASSWORD=(?i)password", "/app/config.ini", 3, 1),)),
        [],
    ),
    # licenses
    (
        "license exact",
        "licenses",
        "blacklist_exact_match",
        {"licenses": "GPL-3.0-or-later,AGPL-3.0"},
        analysis(packages=PACKAGES),
        ["LICFULLMATCH Packages are installed that have blacklisted licenses: bash(GPL-3.0-or-later)"],
    ),
    (
        "license exact v2 name",
        "licenses",
        "denylist_exact_match",
        {"licenses": "GPL-3.0"},
        analysis(packages=PACKAGES),
        [],
    ),
    (
        "license partial",
        "licenses",
        "denylist_partial_match",
        {"licenses": "GPL"},
        analysis(packages=PACKAGES),
        ["LICSUBMATCH Packages are installed that have blacklisted licenses: bash(GPL-3.0-or-later)"],
    ),
    # metadata
    (
        "metadata distro =",
        "metadata",
        "attribute",
        {"attribute": "distro", "check": "=", "value": "debian"},
        analysis(distro=Distro("debian", "12")),
        ["Attribute check for attribute: 'distro' check: '=' check_value: 'debian' matched image value: 'debian'"],
    ),
    (
        "metadata size with unit",
        "metadata",
        "attribute",
        {"attribute": "size", "check": ">", "value": "1kb"},
        analysis(),
        ["Attribute check for attribute: 'size' check: '>' check_value: '1024' matched image value: '1500'"],
    ),
    (
        "metadata size below",
        "metadata",
        "attribute",
        {"attribute": "size", "check": ">", "value": "1mb"},
        analysis(),
        [],
    ),
    (
        "metadata layer_count",
        "metadata",
        "attribute",
        {"attribute": "layer_count", "check": ">=", "value": "2"},
        analysis(),
        ["Attribute check for attribute: 'layer_count' check: '>=' check_value: '2' matched image value: '2'"],
    ),
    (
        "metadata architecture in",
        "metadata",
        "attribute",
        {"attribute": "architecture", "check": "in", "value": "arm64, amd64"},
        analysis(),
        [
            "Attribute check for attribute: 'architecture' check: 'in' check_value: 'arm64, amd64' matched image "
            "value: "
            "'amd64'"
        ],
    ),
    (
        "metadata missing distro with > never fires",
        "metadata",
        "attribute",
        {"attribute": "distro_version", "check": ">", "value": "1"},
        analysis(),
        [],
    ),
    # packages
    (
        "required_package missing",
        "packages",
        "required_package",
        {"name": "ca-certificates"},
        analysis(packages=PACKAGES),
        ["Required input package (ca-certificates) is not present in container image"],
    ),
    (
        "required_package missing with version",
        "packages",
        "required_package",
        {"name": "ca-certificates", "version": "1"},
        analysis(packages=PACKAGES),
        ["Required input package (ca-certificates,1) is not present in container image"],
    ),
    ("required_package present", "packages", "required_package", {"name": "openssl"}, analysis(packages=PACKAGES), []),
    (
        "required_package exact mismatch (Anchore prints the name)",
        "packages",
        "required_package",
        {"name": "openssl", "version": "3.0.13-1"},
        analysis(packages=PACKAGES),
        [
            "Required input package (openssl) is present (3.0.11-1~deb12u2), but not at the version specified in "
            "policy (openssl)"
        ],
    ),
    (
        "required_package minimum lower",
        "packages",
        "required_package",
        {"name": "openssl", "version": "3.0.13-1", "version_match_type": "minimum"},
        analysis(packages=PACKAGES),
        [
            "Required min-version input package (openssl) is present (3.0.11-1~deb12u2), but is lower version "
            "than what "
            "is specified in policy (3.0.13-1)"
        ],
    ),
    (
        "required_package minimum satisfied (dpkg order)",
        "packages",
        "required_package",
        {"name": "openssl", "version": "3.0.9-1", "version_match_type": "minimum"},
        analysis(packages=PACKAGES),
        [],
    ),
    (
        "packages denylist",
        "packages",
        "blacklist",
        {"name": "bash"},
        analysis(packages=PACKAGES),
        ["Package is blacklisted: bash"],
    ),
    (
        "packages denylist version",
        "packages",
        "denylist",
        {"name": "bash", "version": "5.2.15-2+b2"},
        analysis(packages=PACKAGES),
        ["Package is blacklisted: bash-5.2.15-2+b2"],
    ),
    (
        "packages denylist other version",
        "packages",
        "denylist",
        {"name": "bash", "version": "1"},
        analysis(packages=PACKAGES),
        [],
    ),
    (
        "verify missing file",
        "packages",
        "verify",
        {"check": "missing"},
        analysis(
            packages=(_pkg("tzdata", "1", files=[{"path": "/usr/share/zoneinfo/UTC"}, {"path": "/etc/timezone"}]),),
            files=(FileRecord("/etc/timezone", "file", 0o644),),
        ),
        [
            "VERIFY check against package db for package 'tzdata' failed on entry '/usr/share/zoneinfo/UTC' with "
            "status: "
            "'missing'"
        ],
    ),
    # malware: ci-gate runs no scanner, so the image looks as it does to an engine with ClamAV off
    ("malware scan not run", "malware", "scan_not_run", None, analysis(), ["No malware scans found for image"]),
    ("malware scans never fire", "malware", "scans", None, analysis(), []),
    # passwd_file
    (
        "passwd not available",
        "passwd_file",
        "content_not_available",
        None,
        analysis(),
        ["Cannot locate /etc/passwd in image stored files archive: check analyzer settings."],
    ),
    (
        "passwd available",
        "passwd_file",
        "content_not_available",
        None,
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        [],
    ),
    (
        "passwd usernames",
        "passwd_file",
        "blacklist_usernames",
        {"user_names": "daemon,ftp"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        [
            "Blacklisted user 'daemon' found in image's /etc/passwd: "
            "pentry=daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin"
        ],
    ),
    (
        "passwd usernames legacy param alias",
        "passwd_file",
        "denylist_usernames",
        {"usernameblacklist": "app"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        ["Blacklisted user 'app' found in image's /etc/passwd: pentry=app:x:1000:1000::/home/app:/bin/sh"],
    ),
    (
        "passwd userids",
        "passwd_file",
        "blacklist_userids",
        {"user_ids": "0"},
        analysis(retrieved_files={"/etc/passwd": PASSWD + TOOR}),
        [
            "Blacklisted uid '0' found in image's /etc/passwd: pentry=root:x:0:0:root:/root:/bin/bash",
            "Blacklisted uid '0' found in image's /etc/passwd: pentry=toor:x:0:0::/root:/bin/sh",
        ],
    ),
    (
        "passwd groupids",
        "passwd_file",
        "blacklist_groupids",
        {"group_ids": "1000"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        ["Blacklisted gid '1000' found in image's /etc/passwd: pentry=app:x:1000:1000::/home/app:/bin/sh"],
    ),
    (
        "passwd shells",
        "passwd_file",
        "blacklist_shells",
        {"shells": "/bin/bash"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        ["Blacklisted shell '/bin/bash' found in image's /etc/passwd: pentry=root:x:0:0:root:/root:/bin/bash"],
    ),
    (
        "passwd full entry",
        "passwd_file",
        "blacklist_full_entry",
        {"entry": "app:x:1000:1000::/home/app:/bin/sh"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        [
            "Blacklisted pentry 'app:x:1000:1000::/home/app:/bin/sh' found in image's /etc/passwd: "
            "pentry=app:x:1000:1000::/home/app:/bin/sh"
        ],
    ),
    (
        "passwd full entry no match",
        "passwd_file",
        "denylist_full_entry",
        {"entry": "app:x:1:1::/:/bin/sh"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        [],
    ),
    # retrieved_files
    (
        "retrieved missing",
        "retrieved_files",
        "content_not_available",
        {"path": "/etc/app.conf"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        ["Cannot locate file in the image analysis"],
    ),
    (
        "retrieved present",
        "retrieved_files",
        "content_not_available",
        {"path": "/etc/passwd"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        [],
    ),
    (
        "retrieved regex match",
        "retrieved_files",
        "content_regex",
        {"path": "/etc/passwd", "regex": "toor:.*", "check": "match"},
        analysis(retrieved_files={"/etc/passwd": PASSWD + TOOR}),
        ["Content regex 'toor:.*' check 'match' found in retrieved file '/etc/passwd'"],
    ),
    (
        "retrieved regex no_match",
        "retrieved_files",
        "content_regex",
        {"path": "/etc/passwd", "regex": "toor:.*", "check": "no_match"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
        ["Content regex 'toor:.*' check 'no_match' found in retrieved file '/etc/passwd'"],
    ),
    # secret_scans
    (
        "secrets found",
        "secret_scans",
        "content_regex_checks",
        None,
        analysis(
            secrets=(
                SecretFinding(
                    "AWS_ACCESS_KEY",
                    "file",
                    "/root/.aws/credentials",
                    1,
                    1,
                    regex="AWS_ACCESS_KEY=(?i).*aws_access_key_id.*",
                ),
            )
        ),
        [
            "Secret content search analyzer found regexp match in container: file=/root/.aws/credentials "
            "regexp=AWS_ACCESS_KEY=(?i).*aws_access_key_id.*"
        ],
    ),
    (
        "secrets filtered by name (substring, as Anchore)",
        "secret_scans",
        "content_regex_checks",
        {"content_regex_name": "PRIV_KEY"},
        analysis(secrets=(SecretFinding("AWS_ACCESS_KEY", "file", "/a", 1, 1, regex="AWS_ACCESS_KEY=x"),)),
        [],
    ),
    (
        "secrets filename filter",
        "secret_scans",
        "content_regex_checks",
        {"filename_regex": "/etc/.*"},
        analysis(secrets=(SecretFinding("PRIV_KEY", "file", "/root/id_rsa", 1, 1, regex="PRIV_KEY=y"),)),
        [],
    ),
    (
        "secrets notfound",
        "secret_scans",
        "content_regex_checks",
        {"match_type": "notfound"},
        analysis(),
        [
            "Secret content search analyzer did not find regexp match in container: filename_regex=* "
            "content_regex_name=all"
        ],
    ),
    (
        "secrets in ENV are not Anchore's",
        "secret_scans",
        "content_regex_checks",
        None,
        analysis(secrets=(SecretFinding("PASSWORD", "env", "ENV:DB_PASSWORD"),)),
        [],
    ),
    # npms / ruby_gems
    (
        "npm denylist",
        "npms",
        "blacklisted_name_version",
        {"name": "left-pad"},
        analysis(packages=PACKAGES),
        ["NPM Package is blacklisted: left-pad"],
    ),
    (
        "npm denylist version",
        "npms",
        "denylisted_name_version",
        {"name": "left-pad", "version": "1.3.0"},
        analysis(packages=PACKAGES),
        ["NPM Package is blacklisted: left-pad-1.3.0"],
    ),
    (
        "npm deb package does not count",
        "npms",
        "blacklisted_name_version",
        {"name": "bash"},
        analysis(packages=PACKAGES),
        [],
    ),
    (
        "gem denylist",
        "ruby_gems",
        "blacklist",
        {"name": "rails", "version": "7.1.0"},
        analysis(packages=PACKAGES),
        ["Gem Package is blacklisted: rails-7.1.0"],
    ),
    ("npm feed trigger never fires", "npms", "feed_data_unavailable", None, analysis(packages=PACKAGES), []),
    # distro (Enterprise)
    (
        "distro deny version <",
        "distro",
        "deny",
        {"distro": "debian", "version": "11", "check": "<="},
        analysis(distro=Distro("debian", "10")),
        ["Distro debian 10 is denied by policy: version <= 11"],
    ),
    (
        "distro deny newer passes",
        "distro",
        "deny",
        {"distro": "debian", "version": "11", "check": "<="},
        analysis(distro=Distro("debian", "12")),
        [],
    ),
    # ancestry (Enterprise)
    (
        "ancestry allowed tag",
        "ancestry",
        "allowed_base_image_tag",
        {"base_tag": "registry1.dso.mil/ironbank/*"},
        analysis(dockerfile=dockerfile("FROM debian:12", base_image="debian:12")),
        ["Base image tag debian:12 is not in the allowed base image tags"],
    ),
    (
        "ancestry allowed tag matches",
        "ancestry",
        "allowed_base_image_tag",
        {"base_tag": "registry1.dso.mil/ironbank/*"},
        analysis(dockerfile=dockerfile("FROM x", base_image="registry1.dso.mil/ironbank/redhat/ubi/ubi9:9.4")),
        [],
    ),
    (
        "ancestry digest not pinned",
        "ancestry",
        "allowed_base_image_digest",
        {"base_digest": "sha256:" + "c" * 64},
        analysis(dockerfile=dockerfile("FROM x", base_image="debian:12")),
        [
            "Base image debian:12 is not pinned by digest, so it cannot be checked against the allowed base "
            "image digests"
        ],
    ),
    (
        "ancestry denied digest",
        "ancestry",
        "denylist_ancestor_image_digest",
        {"ancestor_digest": "sha256:" + "c" * 64},
        analysis(dockerfile=dockerfile("FROM x", base_image="debian@sha256:" + "c" * 64)),
        [f"Ancestor image digest sha256:{'c' * 64} is denylisted"],
    ),
    (
        "ancestry denied tag wildcard",
        "ancestry",
        "denylist_ancestor_image_tag",
        {"ancestor_tag": "centos:*"},
        analysis(dockerfile=dockerfile("FROM x", base_image="centos:7")),
        ["Ancestor image tag centos:7 is denylisted"],
    ),
    (
        "ancestry denied tag other",
        "ancestry",
        "denylist_ancestor_image_tag",
        {"ancestor_tag": "centos:*"},
        analysis(dockerfile=dockerfile("FROM x", base_image="debian:12")),
        [],
    ),
    (
        "ancestry no ancestors",
        "ancestry",
        "no_ancestors_analyzed",
        None,
        analysis(identity=identity(layers=())),
        ["No ancestor image is known for this image (no FROM in the Dockerfile and no --base-image)"],
    ),
    # extensions
    (
        "image_user empty",
        "image_user",
        "runs_as_root",
        None,
        analysis(config=ImageConfig(user="")),
        ["Image runs as root: the image config sets no User"],
    ),
    (
        "image_user 0:0",
        "image_user",
        "runs_as_root",
        None,
        analysis(config=ImageConfig(user="0:0")),
        ["Image runs as root: the image config User is '0:0'"],
    ),
    (
        "image_user uid-0 name",
        "image_user",
        "runs_as_root",
        None,
        analysis(config=ImageConfig(user="toor"), users=USERS),
        ["Image runs as root: the image config User is 'toor'"],
    ),
    (
        "image_user app",
        "image_user",
        "runs_as_root",
        None,
        analysis(config=ImageConfig(user="1000:1000"), users=USERS),
        [],
    ),
    (
        "privileged ports",
        "network_ports",
        "privileged_ports",
        None,
        analysis(config=ImageConfig(user="app", exposed_ports=("80/tcp", "8080/tcp", "53/udp"))),
        ["Image exposes privileged port 80/tcp (below 1024)", "Image exposes privileged port 53/udp (below 1024)"],
    ),
    (
        "privileged ports allowed exception",
        "network_ports",
        "privileged_ports",
        {"allowed_ports": "80"},
        analysis(config=ImageConfig(user="app", exposed_ports=("80/tcp",))),
        [],
    ),
    (
        "privileged ports custom bound",
        "network_ports",
        "privileged_ports",
        {"below": "9000"},
        analysis(config=ImageConfig(user="app", exposed_ports=("8080/tcp",))),
        ["Image exposes privileged port 8080/tcp (below 9000)"],
    ),
    ("healthcheck missing", "healthcheck", "missing", None, analysis(), ["Image has no HEALTHCHECK"]),
    (
        "healthcheck NONE",
        "healthcheck",
        "missing",
        None,
        analysis(config=ImageConfig(user="app", healthcheck={"Test": ["NONE"]})),
        ["Image disables its HEALTHCHECK (HEALTHCHECK NONE)"],
    ),
    (
        "healthcheck present",
        "healthcheck",
        "missing",
        None,
        analysis(config=ImageConfig(user="app", healthcheck={"Test": ["CMD", "true"]})),
        [],
    ),
    (
        "labels required",
        "image_labels",
        "required",
        {"labels": "org.opencontainers.image.title,version"},
        analysis(config=ImageConfig(user="app", labels={"org.opencontainers.image.title": "app"})),
        ["Required label version is missing or empty"],
    ),
    (
        "ssh package",
        "ssh_daemon",
        "present",
        None,
        analysis(packages=(_pkg("openssh-server", "1:9.2p1-2"),)),
        ["SSH server package openssh-server 1:9.2p1-2 is installed"],
    ),
    (
        "ssh binary and port",
        "ssh_daemon",
        "present",
        None,
        analysis(
            files=(FileRecord("/usr/sbin/sshd", "file", 0o755),),
            config=ImageConfig(user="app", exposed_ports=("22/tcp",)),
        ),
        ["SSH server binary /usr/sbin/sshd is present", "Image exposes the SSH port 22/tcp"],
    ),
    ("ssh absent", "ssh_daemon", "present", None, analysis(packages=PACKAGES), []),
    (
        "add remote url",
        "build_instructions",
        "add_remote_url",
        None,
        analysis(dockerfile=dockerfile("FROM x", "ADD https://example.com/app.tgz /app")),
        ["ADD fetches a remote URL at Dockerfile line 2: https://example.com/app.tgz"],
    ),
    (
        "pipe to shell",
        "build_instructions",
        "pipe_to_shell",
        None,
        analysis(dockerfile=dockerfile("FROM x", "RUN curl -fsSL https://get.example.com | sudo bash")),
        ["RUN pipes a download into a shell at Dockerfile line 2: curl -fsSL https://get.example.com | sudo bash"],
    ),
    (
        "curl to file is not pipe to shell",
        "build_instructions",
        "pipe_to_shell",
        None,
        analysis(dockerfile=dockerfile("RUN curl -o /tmp/x https://e.com/x && sha256sum -c x.sha")),
        [],
    ),
    (
        "pipe to shell from history",
        "build_instructions",
        "pipe_to_shell",
        None,
        analysis(
            identity=identity(
                history=(HistoryEntry(created_by="/bin/sh -c wget -qO- https://x.io/i.sh | sh", layer_index=1),)
            )
        ),
        ["RUN pipes a download into a shell at history entry 0: wget -qO- https://x.io/i.sh | sh"],
    ),
    (
        "remote fetch",
        "build_instructions",
        "remote_fetch",
        None,
        analysis(dockerfile=dockerfile("RUN wget https://example.com/tool.tgz")),
        ["RUN downloads during the build at Dockerfile line 1: wget https://example.com/tool.tgz"],
    ),
    (
        "local curl is not a remote fetch",
        "build_instructions",
        "remote_fetch",
        None,
        analysis(dockerfile=dockerfile("RUN curl --version")),
        [],
    ),
    (
        "update alone",
        "build_instructions",
        "update_alone",
        None,
        analysis(dockerfile=dockerfile("RUN apt-get update", "RUN apt-get install -y curl")),
        ["RUN updates the package index without installing in the same step at Dockerfile line 1: apt-get update"],
    ),
    (
        "update with install",
        "build_instructions",
        "update_alone",
        None,
        analysis(dockerfile=dockerfile("RUN apt-get update && apt-get install -y curl")),
        [],
    ),
    (
        "sudo",
        "build_instructions",
        "sudo",
        None,
        analysis(dockerfile=dockerfile("RUN sudo make install")),
        ["RUN uses sudo at Dockerfile line 1: sudo make install"],
    ),
    (
        "add local",
        "build_instructions",
        "add_instead_of_copy",
        None,
        analysis(dockerfile=dockerfile("ADD app.tar.gz /app")),
        ["ADD used where COPY would do at Dockerfile line 1: app.tar.gz /app"],
    ),
    (
        "base rootfs ADD ignored",
        "build_instructions",
        "add_instead_of_copy",
        None,
        analysis(
            identity=identity(
                history=(HistoryEntry(created_by="/bin/sh -c #(nop) ADD file:" + "d" * 64 + " in / ", layer_index=0),)
            )
        ),
        [],
    ),
    (
        "secret in env",
        "embedded_secrets",
        "env",
        None,
        analysis(secrets=(SecretFinding("PASSWORD", "env", "ENV:DB_PASSWORD", preview="DB_PASSWORD=hu****"),)),
        ["Secret PASSWORD found in environment variable ENV:DB_PASSWORD: DB_PASSWORD=hu****"],
    ),
    (
        "redacted env var",
        "embedded_secrets",
        "env",
        None,
        analysis(config=ImageConfig(user="app", env=(EnvVar("API_TOKEN", "<redacted>", True),))),
        ["Secret-looking environment variable API_TOKEN is set in the image config"],
    ),
    (
        "secret in history",
        "embedded_secrets",
        "history",
        None,
        analysis(
            secrets=(SecretFinding("AWS_SECRET_KEY", "history", "history[3]", layer_index=1, preview="aws_****"),)
        ),
        ["Secret AWS_SECRET_KEY found in build history history[3]: aws_****"],
    ),
    (
        "secret in label",
        "embedded_secrets",
        "label",
        None,
        analysis(secrets=(SecretFinding("API_KEY", "label", "label:token"),)),
        ["Secret API_KEY found in label label:token"],
    ),
    (
        "secret in deleted file",
        "embedded_secrets",
        "deleted_file",
        None,
        analysis(secrets=(SecretFinding("PRIV_KEY", "file", "/root/.ssh/id_rsa", 1, 0, deleted=True),)),
        ["Secret PRIV_KEY found in deleted file /root/.ssh/id_rsa line 1 (still shipped in layer 0)"],
    ),
    (
        "sensitive volume",
        "volumes",
        "sensitive_path",
        None,
        analysis(config=ImageConfig(user="app", volumes=("/var/run/docker.sock", "/data"))),
        ["Image declares a VOLUME on the sensitive path /var/run/docker.sock"],
    ),
    (
        "duplicate uids",
        "accounts",
        "duplicate_uids",
        None,
        analysis(retrieved_files={"/etc/passwd": PASSWD + TOOR}),
        ["uid 0 is shared by users root, toor in /etc/passwd"],
    ),
    (
        "empty password",
        "accounts",
        "empty_password",
        None,
        analysis(retrieved_files={"/etc/passwd": "guest::1001:1001::/home/guest:/bin/sh\n"}),
        ["User guest has an empty password field in /etc/passwd"],
    ),
]


@pytest.mark.parametrize(
    ("gate", "trigger", "params", "image", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_trigger(gate: str, trigger: str, params: dict[str, str] | None, image: Any, expected: list[str]) -> None:
    assert messages(gate, trigger, params, image) == expected


def test_every_declared_trigger_has_a_case() -> None:
    from ci_gate.policy.gates.registry import gates

    covered = {(case[1], case[2]) for case in CASES}
    missing = []
    for gate in gates().values():
        if gate.name == "vulnerabilities":  # its own tests live with the vulnerability matching
            continue
        if gate.name == "stig":  # its own tests live in tests/stig (they need real oscap results)
            continue
        if gate.name == "tag_drift":  # its own tests live in tests/watch (they need a previous image)
            continue
        for trigger in gate.triggers:
            names = {trigger.name, *trigger.aliases}
            if not any((gate.name, name) in covered for name in names):
                missing.append(f"{gate.name}/{trigger.name}")
    allowed_untested = {
        "npms/newer_version_in_feed",
        "npms/unknown_in_feeds",
        "npms/version_not_in_feeds",
        "ruby_gems/newer_version_found_in_feed",
        "ruby_gems/not_found_in_feed",
        "ruby_gems/version_not_found_in_feed",
        "ruby_gems/feed_data_unavailable",
    }
    assert set(missing) <= allowed_untested, missing


def test_trigger_id_is_anchore_md5_of_gate_trigger_message() -> None:
    finding = fire(
        "dockerfile",
        "exposed_ports",
        {"ports": "22", "type": "blacklist"},
        analysis(dockerfile=dockerfile("EXPOSE 22")),
    )[0]
    expected = hashlib.md5(
        b"dockerfileexposed_portsDockerfile exposes port (22) which is in policy file DENIEDPORTS list"
    ).hexdigest()
    assert finding.trigger_id == expected


def test_trigger_id_uses_the_spelling_of_the_rule() -> None:
    image = analysis(retrieved_files={"/etc/passwd": PASSWD})
    v1 = fire("passwd_file", "blacklist_usernames", {"user_names": "daemon"}, image)[0]
    v2 = fire("passwd_file", "denylist_usernames", {"user_names": "daemon"}, image)[0]
    assert v1.trigger == "blacklist_usernames" and v2.trigger == "denylist_usernames"
    assert v1.trigger_id == hashlib.md5(("passwd_fileblacklist_usernames" + v1.message).encode()).hexdigest()
    assert v1.trigger_id != v2.trigger_id


def test_special_trigger_ids() -> None:
    assert fire("always", "always", None, analysis())[0].trigger_id == "always"
    regex = fire(
        "retrieved_files",
        "content_regex",
        {"path": "/etc/passwd", "regex": "root.*", "check": "match"},
        analysis(retrieved_files={"/etc/passwd": PASSWD}),
    )[0]
    assert regex.trigger_id == "r1+file:///etc/passwd"


def test_findings_carry_location_origin_and_dockerfile_line() -> None:
    suid = fire(
        "files",
        "suid_or_guid_set",
        None,
        analysis(
            files=(
                FileRecord("/usr/bin/su", "file", 0o4755, layer_index=0),
                FileRecord("/app/tool", "file", 0o2755, layer_index=1),
            )
        ),
    )
    assert [(f.path, f.layer_index, f.origin) for f in suid] == [("/usr/bin/su", 0, "base"), ("/app/tool", 1, "app")]
    exposed = fire(
        "dockerfile",
        "exposed_ports",
        {"ports": "22", "type": "denylist"},
        analysis(dockerfile=dockerfile("FROM x", "RUN y", "EXPOSE 22")),
    )
    assert exposed[0].dockerfile_line == 3
    guessed = fire(
        "dockerfile",
        "exposed_ports",
        {"ports": "22", "type": "denylist"},
        analysis(dockerfile=dockerfile("FROM x", "EXPOSE 22", mode="guessed")),
    )
    assert guessed[0].dockerfile_line is None  # a guessed Dockerfile's numbers are not lines


def test_effective_user_of_a_guessed_dockerfile_without_user_is_the_config_user() -> None:
    image = analysis(config=ImageConfig(user="1000:1000"), dockerfile=dockerfile("RUN make", mode="guessed"))
    assert messages("dockerfile", "effective_user", {"users": "root", "type": "denylist"}, image) == []
    root = analysis(config=ImageConfig(user="0"), dockerfile=dockerfile("RUN make", mode="guessed"))
    assert messages("dockerfile", "effective_user", {"users": "root", "type": "denylist"}, root) == [
        "User 0 found as effective user, which is explicity not allowed"]


@pytest.mark.parametrize(("regex", "paths", "expected"), [
    ("/usr/lib/.*", ["/usr/lib/a", "/usr/libx", "/usr/bin/a", "/usr/lib"], ["/usr/lib/a"]),
    ("/etc/ab*c", ["/etc/ac", "/etc/abbc", "/etc/ad"], ["/etc/ac", "/etc/abbc"]),
    ("/etc/a?x", ["/etc/x", "/etc/ax", "/etc/bx"], ["/etc/x", "/etc/ax"]),
    ("(?i)/ETC/passwd", ["/etc/passwd"], ["/etc/passwd"]),
    ("/opt/a|/srv/b", ["/srv/b", "/opt/a"], ["/srv/b", "/opt/a"]),
    (r"/x\.y", ["/x.y", "/xzy"], ["/x.y"]),
])
def test_name_match_prefix_narrowing_matches_a_full_scan(regex: str, paths: list[str], expected: list[str]) -> None:
    image = analysis(files=tuple(FileRecord(path, "file", 0o644) for path in paths))
    assert [f.path for f in fire("files", "name_match", {"regex": regex}, image)] == expected


def test_partial_license_counts_each_matching_part_like_anchore() -> None:
    image = analysis(packages=(_pkg("a", "1", licenses=("LGPL-2.1",)), _pkg("b", "1", licenses=("MIT",))))
    assert messages("licenses", "denylist_partial_match", {"licenses": "GPL,LGPL"}, image) == [
        "LICSUBMATCH Packages are installed that have blacklisted licenses: a(LGPL-2.1), a(LGPL-2.1)"]


def test_denylists_see_through_build_variables() -> None:
    from ci_gate.model import Dockerfile, DockerfileInstruction

    def image(keyword: str, value: str, expanded: str) -> Any:
        instructions = (DockerfileInstruction("FROM", "debian:12", 1),
                        DockerfileInstruction(keyword, value, 3, expanded=expanded))
        return analysis(dockerfile=Dockerfile("actual", instructions=instructions))

    assert messages("dockerfile", "effective_user", {"users": "root", "type": "denylist"},
                    image("USER", "${APP_UID}", "0")) == [
        "User ${APP_UID} found as effective user, which is explicity not allowed"]
    assert messages("dockerfile", "effective_user", {"users": "root", "type": "denylist"},
                    image("USER", "${APP_UID}", "1000")) == []
    assert messages("dockerfile", "exposed_ports", {"ports": "22", "type": "denylist"},
                    image("EXPOSE", "${SSH_PORT}", "22")) == [
        "Dockerfile exposes port (22) which is in policy file DENIEDPORTS list"]
