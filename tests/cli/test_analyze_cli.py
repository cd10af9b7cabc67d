"""`ci-gate analyze` as a user runs it: every scheme, the JSON it prints, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.oci import OciImage, TarItem, build_oci_layout, push
from tests.support.registry import RegistryServer

FAKE_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq9Kx3Lm2Q"  # 40 chars: Anchore's AWS_SECRET_KEY shape
FAKE_GITHUB_TOKEN = "ghp_" + "Zq8Xw3Lk9Vb2Nm4Hj7Tg5Rf1Dc6Sa0Ep3Yu8"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    environment.pop("CI_GATE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=600)


def analyze_json(reference: str, *extra: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "analysis.json"
    result = run_cli("analyze", reference, "-o", "json", "--file", str(out), "--no-cache", *extra)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(out.read_text()))


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("ci-gate: error:"), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


# --- what analyze reports ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """A small image with the things analyze must notice, including a secret deleted by a later layer."""
    out = tmp_path_factory.mktemp("planted") / "oci"
    base = [
        TarItem("etc/", kind="dir", mode=0o755),
        TarItem("etc/os-release", b'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'),
        TarItem("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nsvc:x:1000:1000::/home/svc:/sbin/nologin\n"),
        TarItem("etc/group", b"root:x:0:\nsvc:x:1000:\n"),
        TarItem("usr/bin/su", b"\x7fELF", mode=0o4755),
        TarItem("tmp/", kind="dir", mode=0o1777),
        TarItem("var/drop/", kind="dir", mode=0o777),
        TarItem("root/.aws/credentials", f"[default]\naws_secret_access_key = {FAKE_AWS_SECRET}\n".encode()),
    ]
    app = [
        TarItem("root/.aws/.wh.credentials"),
        TarItem("app/config.txt", f"token={FAKE_GITHUB_TOKEN}\n".encode()),
    ]
    config = {
        "User": "svc",
        "ExposedPorts": {"8080/tcp": {}, "22/tcp": {}},
        "Env": ["PATH=/usr/bin", "DB_PASSWORD=hunter2-very-secret"],
        "Cmd": ["/app/run"],
        "Labels": {"org.opencontainers.image.base.name": "docker.io/library/alpine:3.19"},
        "Healthcheck": {"Test": ["CMD", "/app/health"]},
    }
    history = [
        {"created": "1970-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created": "1970-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) COPY dir:def in /app "},
        {"created": "1970-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop)  USER svc", "empty_layer": True},
    ]
    return build_oci_layout(out, [base, app], tag="planted", config=config, history=history)


def test_analyze_json_describes_the_image(planted_image: OciImage, tmp_path: Path) -> None:
    data = analyze_json(f"oci-dir:{planted_image.path}", tmp_path=tmp_path)
    identity = data["identity"]
    assert identity["manifest_digest"] == planted_image.manifest_digest
    assert identity["config_digest"] == planted_image.config_digest
    assert [layer["diff_id"] for layer in identity["layers"]] == list(planted_image.diff_ids)
    assert identity["platform"] == "linux/amd64"
    assert identity["layers"][1]["created_by"].endswith("COPY dir:def in /app ")
    config = data["config"]
    assert config["user"] == "svc"
    assert config["exposed_ports"] == ["22/tcp", "8080/tcp"]
    env = {e["name"]: e for e in config["env"]}
    assert env["DB_PASSWORD"]["redacted"] is True and "hunter2" not in json.dumps(data)
    assert data["distro"]["id"] == "alpine" and data["distro"]["version_id"] == "3.19.1"
    assert [u["name"] for u in data["users"]] == ["root", "svc"]
    files = {f["path"]: f for f in data["files"]}
    assert files["/usr/bin/su"]["mode"] == 0o4755
    assert files["/app/config.txt"]["layer_index"] == 1
    assert "/root/.aws/credentials" not in files
    assert data["dockerfile"]["mode"] == "guessed"
    secrets = data["secrets"]
    by_rule = {(s["rule"], s["path"]): s for s in secrets}
    aws = by_rule[("AWS_SECRET_KEY", "/root/.aws/credentials")]
    assert aws["deleted"] is True and aws["layer_index"] == 0 and aws["line"] == 2
    assert any(s["path"] == "/app/config.txt" and not s["deleted"] for s in secrets)
    text = json.dumps(data)
    assert FAKE_AWS_SECRET not in text and FAKE_GITHUB_TOKEN not in text


def test_analyze_table_is_readable_and_redacted(planted_image: OciImage) -> None:
    result = run_cli("analyze", f"oci-dir:{planted_image.path}", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "Alpine Linux v3.19" in result.stdout
    assert "setuid/setgid: 1" in result.stdout
    assert "deleted later, still shipped" in result.stdout
    assert FAKE_AWS_SECRET not in result.stdout + result.stderr
    assert FAKE_GITHUB_TOKEN not in result.stdout + result.stderr


def test_a_dockerfile_makes_the_mode_actual(planted_image: OciImage, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine:3.19\nCOPY . /app\nUSER svc\nEXPOSE 8080\n")
    data = analyze_json(f"oci-dir:{planted_image.path}", "--dockerfile", str(dockerfile), tmp_path=tmp_path)
    assert data["dockerfile"]["mode"] == "actual"
    assert [(i["instruction"], i["line"]) for i in data["dockerfile"]["instructions"]] == [
        ("FROM", 1), ("COPY", 2), ("USER", 3), ("EXPOSE", 4)]


def test_the_cache_answers_a_second_run(planted_image: OciImage, tmp_path: Path) -> None:
    env = {"CI_GATE_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli("analyze", f"oci-dir:{planted_image.path}", "-o", "json", env=env)
    assert first.returncode == 0, first.stderr
    entries = list((tmp_path / "cache" / "analysis").glob("*.json"))
    assert len(entries) == 1
    second = run_cli("analyze", f"oci-dir:{planted_image.path}", "-o", "json", env=env)
    assert second.returncode == 0
    assert json.loads(second.stdout) == json.loads(first.stdout)
    # A corrupt cache entry is ignored, not trusted.
    entries[0].write_text("{not json")
    third = run_cli("analyze", f"oci-dir:{planted_image.path}", "-o", "json", env=env)
    assert third.returncode == 0 and json.loads(third.stdout) == json.loads(first.stdout)


# --- every scheme, on the real Debian image -------------------------------------------------------


def _summary(data: dict[str, Any]) -> tuple[Any, ...]:
    packages = sorted((p["type"], p["name"], p["version"]) for p in data["packages"])
    return data["identity"]["config_digest"], data["distro"]["id"], data["file_count"], packages


def test_every_scheme_sees_the_same_debian_image(debian_oci: OciImage, debian_docker_archive: Path,
                                                 debian_oci_archive: Path, registry: RegistryServer,
                                                 tmp_path: Path) -> None:
    reference = _summary(analyze_json(f"oci-dir:{debian_oci.path}", tmp_path=tmp_path))
    assert reference[1] == "debian"
    assert len([p for p in reference[3] if p[0] == "deb"]) >= 80
    push(debian_oci, registry.host, "test/debian:bookworm")
    for ref in (f"docker-archive:{debian_docker_archive}", f"oci-archive:{debian_oci_archive}",
                f"registry:{registry.host}/test/debian:bookworm", str(debian_docker_archive)):
        assert _summary(analyze_json(ref, tmp_path=tmp_path)) == reference, ref


def test_dir_scheme_reads_a_root_filesystem(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text(
        "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n\n")
    data = analyze_json(f"dir:{root}", tmp_path=tmp_path)
    assert data["identity"]["scheme"] == "dir"
    assert data["distro"]["version_id"] == "12"
    assert [(p["name"], p["version"]) for p in data["packages"]] == [("zlib1g", "1:1.2.13.dfsg-1")]


# --- bad input: one line, exit 2, nothing written ------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = run_cli("analyze", f"oci-dir:{tmp_path}/nope", "-o", "json", "--file", str(out))
    assert_one_line_error(result, "nope")
    assert not out.exists()


def test_unknown_scheme(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("analyze", "ftp:example/image"), "ftp")


@pytest.mark.parametrize("content", [b"", b"just some text, not an archive\n" * 20])
def test_empty_or_non_archive_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "image.tar"
    path.write_bytes(content)
    for reference in (f"docker-archive:{path}", f"oci-archive:{path}", str(path)):
        assert_one_line_error(run_cli("analyze", reference))


def _copy_layout(image: OciImage, target: Path) -> Path:
    import shutil

    shutil.copytree(image.path, target)
    return target


def test_corrupt_layer_blob_is_rejected_and_nothing_is_written(planted_image: OciImage, tmp_path: Path) -> None:
    layout = _copy_layout(planted_image, tmp_path / "oci")
    blob = layout / "blobs" / "sha256" / planted_image.layer_digests[1].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    out = tmp_path / "out.json"
    out.write_text("previous")
    result = run_cli("analyze", f"oci-dir:{layout}", "-o", "json", "--file", str(out), "--no-cache")
    assert_one_line_error(result, "layer 2")
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oci", "out.json"]


def test_decompression_bomb_stops_with_a_limit_error(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("zeros", b"\0" * 5_000_000)]], tag="bomb")
    blob = image.blob_path(image.layer_digests[0])
    assert blob.stat().st_size < 50_000
    result = run_cli("analyze", f"oci-dir:{image.path}", "--no-cache", env={"CI_GATE_MAX_IMAGE_BYTES": "1M"})
    assert_one_line_error(result, "CI_GATE_MAX_IMAGE_BYTES")


def test_truncated_gzip_layer(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem(f"f{i}", os.urandom(3000)) for i in range(30)]])
    blob = image.blob_path(image.layer_digests[0])
    os.chmod(blob, 0o644)
    original = blob.read_bytes()
    # Same size as the manifest says, but the gzip stream is cut: a zero-filled tail.
    blob.write_bytes(original[: len(original) // 2] + b"\0" * (len(original) - len(original) // 2))
    assert_one_line_error(run_cli("analyze", f"oci-dir:{image.path}", "--no-cache"))


def test_zstd_and_uncompressed_layers_analyse(tmp_path: Path) -> None:
    for compression in ("zstd", "none"):
        image = build_oci_layout(tmp_path / compression, [[TarItem("etc/os-release", b"ID=debian\n")]],
                                 compression=compression)
        data = analyze_json(f"oci-dir:{image.path}", tmp_path=tmp_path)
        assert data["distro"]["id"] == "debian"


def test_hostile_but_readable_layers_complete_with_warnings(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[
        TarItem("../../../../tmp/ci-gate-escape", b"x"),
        TarItem("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        TarItem("loop1", kind="symlink", link_target="loop2"),
        TarItem("loop2", kind="symlink", link_target="loop1"),
        TarItem("etc/os-release", kind="symlink", link_target="../../../../../../etc/real-os-release"),
        TarItem("etc/real-os-release", b"ID=debian\n"),
        TarItem("hard", kind="hardlink", link_target="missing/target"),
    ]], tag="hostile")
    data = analyze_json(f"oci-dir:{image.path}", tmp_path=tmp_path)
    warnings = "\n".join(data["warnings"])
    assert "../../../../tmp/ci-gate-escape" in warnings
    assert "/hard" in warnings
    assert data["distro"]["id"] == "debian"
    assert [u["name"] for u in data["users"]] == ["root"]
    assert not Path("/tmp/ci-gate-escape").exists()


def test_unknown_output_format_and_wrong_flag(planted_image: OciImage) -> None:
    result = run_cli("analyze", f"oci-dir:{planted_image.path}", "-o", "xml", "--no-cache")
    assert_one_line_error(result, "xml")
    wrong = run_cli("analyze", f"oci-dir:{planted_image.path}", "--no-such-flag")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and "--no-such-flag" in wrong.stderr


def test_manifest_naming_a_missing_blob(planted_image: OciImage, tmp_path: Path) -> None:
    layout = _copy_layout(planted_image, tmp_path / "oci")
    (layout / "blobs" / "sha256" / planted_image.layer_digests[0].split(":")[1]).unlink()
    assert_one_line_error(run_cli("analyze", f"oci-dir:{layout}", "--no-cache"), "missing")


def test_gzip_with_a_wrong_digest(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("a", b"aaaa" * 100)]])
    blob = image.blob_path(image.layer_digests[0])
    os.chmod(blob, 0o644)
    replaced = gzip.compress(gzip.decompress(blob.read_bytes()).replace(b"aaaa", b"bbbb"), mtime=0)
    # Keep the manifest's size right so the digest check is what catches it.
    blob.write_bytes(replaced[: blob.stat().st_size].ljust(blob.stat().st_size, b"\0"))
    assert_one_line_error(run_cli("analyze", f"oci-dir:{image.path}", "--no-cache"))


def test_secrets_in_config_values_are_masked_wherever_they_stand(tmp_path: Path) -> None:
    config = {
        "Env": [f"GIT_URL=https://bot:{FAKE_GITHUB_TOKEN}@example.invalid/app.git"],
        "Labels": {"build.note": f"cloned with {FAKE_GITHUB_TOKEN}"},
        "Cmd": ["/app/run", f"--token={FAKE_GITHUB_TOKEN}"],
    }
    image = build_oci_layout(tmp_path / "oci", [[TarItem("etc/os-release", b"ID=debian\n")]], config=config,
                             tag="config-leak")
    data = analyze_json(f"oci-dir:{image.path}", tmp_path=tmp_path)
    assert FAKE_GITHUB_TOKEN not in json.dumps(data)
    assert data["config"]["env"][0]["redacted"] is True
    assert {s["where"] for s in data["secrets"]} >= {"env", "label"}


def test_secrets_in_history_and_the_dockerfile_are_found_and_masked(tmp_path: Path) -> None:
    history = [
        {"created": "1970-01-01T00:00:00Z",
         "created_by": f"/bin/sh -c git clone https://x:{FAKE_GITHUB_TOKEN}@example.invalid/r.git"},
    ]
    image = build_oci_layout(tmp_path / "oci", [[TarItem("etc/os-release", b"ID=debian\n")]],
                             history=history, tag="leaky")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM debian:12\nENV AWS_SECRET_ACCESS_KEY={FAKE_AWS_SECRET}\n"
                          f"RUN echo aws_secret_access_key = {FAKE_AWS_SECRET} > /root/creds\n")
    data = analyze_json(f"oci-dir:{image.path}", "--dockerfile", str(dockerfile), tmp_path=tmp_path)
    text = json.dumps(data)
    assert FAKE_GITHUB_TOKEN not in text and FAKE_AWS_SECRET not in text
    wheres = {s["where"] for s in data["secrets"]}
    assert {"history", "dockerfile"} <= wheres
    assert any(s["where"] == "dockerfile" and s["line"] == 2 for s in data["secrets"])


def test_secret_rules_file_adds_and_disables_rules(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[
        TarItem("app/.acmerc", b"token = acme_0123456789abcdef0123456789abcdef\n"),
        TarItem("app/config.txt", f"token={FAKE_GITHUB_TOKEN}\n".encode()),
    ]], tag="rules")
    rules = tmp_path / "rules.yaml"
    rules.write_text("disable: [GITHUB_TOKEN]\nrules:\n  - name: ACME_TOKEN\n"
                     "    regex: '.*acme_[a-z0-9]{32}'\n    keywords: [acme_]\n")
    data = analyze_json(f"oci-dir:{image.path}", "--secret-rules", str(rules), tmp_path=tmp_path)
    assert {s["rule"] for s in data["secrets"]} == {"ACME_TOKEN"}
    assert "0123456789abcdef0123456789abcdef" not in json.dumps(data)
    rules.write_text("rules:\n  - name: BROKEN\n    regex: '(unclosed'\n")
    assert_one_line_error(run_cli("analyze", f"oci-dir:{image.path}", "--no-cache", "--secret-rules", str(rules)),
                          "rules.yaml")
