"""No planted secret leaves ci-gate: 30+ distinct secret values planted in every place of an image
the analysis describes (config, history, packages' metadata, passwd, file names, link targets, a
Go binary's build settings, file contents, the Dockerfile) and in hostile image documents, then every
output grepped for any 8-character window of any of them: `analyze` in all formats, `gate` with all
reports, stdout and stderr (GitHub Actions mode: annotations, summary, outputs), the analysis cache,
and `ci-gate serve`'s responses and log. The image is built with the project's own OCI writer."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.elf_builder import elf_with_data, go_inline_build_info, go_module_text
from tests.support.oci import OciImage, TarItem, build_oci_layout, push
from tests.support.registry import RegistryServer
from tests.support.serve import ServeProcess, build_vuln_db
from tests.support.tiny import TINY_OS_RELEASE

ALPHANUMERIC = string.ascii_letters + string.digits


class Planted:
    """The secret values, each made up for one place and recorded with it."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def __call__(self, place: str, prefix: str = "", length: int = 24, alphabet: str = ALPHANUMERIC) -> str:
        seed = hashlib.sha256(f"ci-gate planted {place}".encode()).digest()
        body = "".join(alphabet[byte % len(alphabet)] for byte in (seed + hashlib.sha256(seed).digest())[:length])
        value = prefix + body
        assert value not in self.values.values()
        self.values[place] = value
        return value

    def windows(self) -> dict[str, str]:
        """Every 8-character window of every value → the place it was planted."""
        found: dict[str, str] = {}
        for place, value in self.values.items():
            for start in range(len(value) - 7):
                found.setdefault(value[start:start + 8], place)
        return found


@dataclass
class PlantedImage:
    oci: OciImage
    dockerfile: Path
    planted: Planted


def _build(out: Path) -> PlantedImage:
    p = Planted()
    upper = string.ascii_uppercase + string.digits
    gecos_token = p("passwd GECOS", "glpat-", 20)
    passwd = (f"root:x:0:0:root:/root:/bin/sh\nsvc:x:1000:1000:Service {gecos_token},,,:/home/svc:/bin/sh\n")
    dpkg = (f"Package: tool\nStatus: install ok installed\nMaintainer: Ops <ops@example.com> "
            f"{p('dpkg Maintainer', 'npm_', 36)}\nArchitecture: amd64\nVersion: 1.0-1\nDescription: a tool\n")
    python_metadata = (f"Metadata-Version: 2.1\nName: leaky\nVersion: 2.0\n"
                       f"Author: Jane {p('Python Author', 'sk_live_', 24)}\n"
                       f"Home-page: https://pypi-user:{p('Python Home-page userinfo')}@pypi.example.com/leaky\n"
                       f"Summary: uses api_key = {p('Python Summary api_key', '', 32, upper)}\n")
    npm = json.dumps({
        "name": "leaky-npm", "version": "1.2.3",
        "homepage": f"https://deploy:{p('npm homepage userinfo')}@npm.example.com/leaky",
        "repository": {"type": "git", "url": f"git+https://{p('npm repository token', 'ghs_', 36)}@github.com/a/b.git"},
        "author": f"Bob <bob@example.com> {p('npm author', 'xoxb-123456789012-', 24)}",
    })
    ldflags = (f"-s -w -X main.apiToken={p('Go ldflags apiToken')} -X main.dbPassword={p('Go ldflags dbPassword')} "
               f"-X main.version=1.0.0")
    go_binary = elf_with_data(go_inline_build_info("go1.22.0", go_module_text([
        "path\texample.com/tool/cmd/tool", "mod\texample.com/tool\t(devel)\t", f'build\t-ldflags="{ldflags}"',
        "build\tGOOS=linux", "build\tGOARCH=amd64"])))
    file_name_token = p("file name", "ghp_", 36)
    aws_key_id = p("file name AWS key id", "AKIA", 16, upper)
    link_token = p("symlink target", "glpat-", 22)
    link_url_password = p("symlink target URL userinfo")
    aws_secret = p("file content aws_secret_access_key", "", 40)
    npmrc_token = p("file content .npmrc", "npm_", 36)
    private_key_body = p("file content private key body", "MIIE", 48)
    directories = ["etc", "usr", "usr/lib", "usr/lib/python3", "usr/lib/python3/dist-packages",
                   "usr/lib/python3/dist-packages/leaky-2.0.dist-info", "usr/lib/node_modules",
                   "usr/lib/node_modules/leaky-npm", "usr/local", "usr/local/bin", "var", "var/lib", "var/lib/dpkg",
                   "opt", "opt/app", "root", "root/.aws", "home", "home/svc"]
    layers = [
        [*(TarItem(d, kind="dir", mode=0o755) for d in directories[:3]), TarItem("usr/lib/os-release", TINY_OS_RELEASE),
         TarItem("etc/os-release", kind="symlink", link_target="../usr/lib/os-release", mode=0o777),
         TarItem("etc/passwd", passwd.encode()), TarItem("etc/group", b"root:x:0:\nsvc:x:1000:\n"),
         *(TarItem(d, kind="dir", mode=0o755) for d in ("var", "var/lib", "var/lib/dpkg")),
         TarItem("var/lib/dpkg/status", dpkg.encode())],
        [*(TarItem(d, kind="dir", mode=0o755) for d in directories),
         TarItem("usr/lib/python3/dist-packages/leaky-2.0.dist-info/METADATA", python_metadata.encode()),
         TarItem("usr/lib/node_modules/leaky-npm/package.json", npm.encode()),
         TarItem("usr/local/bin/tool", go_binary, mode=0o755),
         TarItem(f"opt/app/{file_name_token}.json", b"{}\n"),
         TarItem(f"opt/app/{aws_key_id}.csv", b"id\n"),
         TarItem("opt/app/token-link", kind="symlink", link_target=f"/run/secrets/{link_token}"),
         TarItem("opt/app/url-link", kind="symlink",
                 link_target=f"https://mirror:{link_url_password}@files.example.com/x"),
         TarItem("root/.aws/credentials", f"[default]\naws_secret_access_key = {aws_secret}\n".encode(), mode=0o600),
         TarItem("home/svc/.npmrc", f"//registry.npmjs.org/:_authToken={npmrc_token}\n".encode()),
         TarItem("opt/app/key.pem", f"-----BEGIN RSA PRIVATE KEY-----\n{private_key_body}\n"
                 "-----END RSA PRIVATE KEY-----\n".encode())],
    ]
    config = {
        "User": "1000",
        "Env": ["PATH=/usr/bin:/bin", f"GITHUB_TOKEN={p('ENV GITHUB_TOKEN', 'ghp_', 36)}",
                f"DATABASE_URL=postgres://app:{p('ENV DATABASE_URL userinfo')}@db.internal:5432/app"],
        "Labels": {"com.acme.api-token": p("label value under a secret name"),
                   "com.acme.note": f"contact {p('label value with a token', 'AIza', 35)}",
                   p("label key", "ghp_", 36): "1"},
        "Healthcheck": {"Test": ["CMD", "curl", "-H", f"Authorization: Bearer {p('Healthcheck bearer', '', 32)}",
                                 f"https://probe:{p('Healthcheck URL userinfo')}@localhost/health"]},
        "WorkingDir": f"/srv/{p('WorkingDir', 'xoxp-123456789012-', 24)}",
        "Cmd": ["/usr/local/bin/tool", f"--api-key={p('Cmd api-key', '', 32, upper)}"],
        "Entrypoint": ["/bin/sh", "-c", f"export STRIPE_SECRET={p('Entrypoint', 'rk_live_', 30)}; exec \"$@\""],
        "OnBuild": [f"RUN echo {p('OnBuild', 'xoxa-123456789012-', 24)}"],
        "Volumes": {f"/data/{p('Volume path', 'glpat-', 24)}": {}},
    }
    history = [
        {"created": "1970-01-01T00:00:00Z", "created_by": "ADD rootfs /"},
        {"created": "1970-01-01T00:00:00Z",
         "created_by": f"RUN curl -H 'PRIVATE-TOKEN: {p('history PRIVATE-TOKEN')}' https://gitlab.example.com/x "
                       f"&& export NPM_TOKEN={p('history NPM_TOKEN')}",
         "comment": f"built with ghp_{p('history comment', '', 36)}"},
    ]
    oci = build_oci_layout(out / "oci", layers, tag="leaky", config=config, history=history)
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(
        "FROM debian:bookworm\n"
        f"ARG SIGNING_KEY={p('Dockerfile ARG SIGNING_KEY')}\n"
        f"ENV API_SECRET={p('Dockerfile ENV API_SECRET')}\n"
        f"LABEL com.acme.deploy-password={p('Dockerfile LABEL')}\n"
        f"RUN curl -fsS https://ci:{p('Dockerfile RUN URL userinfo')}@artifacts.example.com/tool -o /tool\n"
        "USER 1000\n")
    return PlantedImage(oci, dockerfile, p)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedImage:
    return _build(tmp_path_factory.mktemp("planted"))


def _hostile_documents(image: PlantedImage, out: Path) -> list[tuple[Path, str]]:
    """Copies of the layout whose index names a manifest by a token-bearing media type or digest."""
    layouts = []
    for kind in ("mediaType", "digest"):
        target = out / kind
        shutil.copytree(image.oci.path, target)
        index = json.loads((target / "index.json").read_text())
        token = image.planted(f"index {kind}", "ghp_", 36)
        if kind == "mediaType":
            # A layer's media type, in a manifest written as a new blob so its digest holds.
            entry = index["manifests"][0]
            algorithm, hex_digest = entry["digest"].split(":")
            manifest = json.loads((target / "blobs" / algorithm / hex_digest).read_bytes())
            manifest["layers"][0]["mediaType"] = f"application/vnd.{token}.tar"
            data = json.dumps(manifest).encode()
            new_hex = hashlib.sha256(data).hexdigest()
            (target / "blobs" / "sha256" / new_hex).write_bytes(data)
            entry.update(digest=f"sha256:{new_hex}", size=len(data))
        else:
            index["manifests"][0]["digest"] = f"sha256:{token}"
        (target / "index.json").write_text(json.dumps(index))
        layouts.append((target, kind))
    return layouts


def _values_of(key: str, document: object) -> Iterator[str]:
    """Every string under `key` anywhere in a JSON document."""
    if isinstance(document, dict):
        for name, value in document.items():
            if name == key and isinstance(value, str):
                yield value
            yield from _values_of(key, value)
    elif isinstance(document, list):
        for item in document:
            yield from _values_of(key, item)


def _run(arguments: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *arguments], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, check=False)


def _files_under(folder: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes().decode("utf-8", "replace")


def test_no_planted_secret_reaches_any_output(planted: PlantedImage, tmp_path: Path, registry: RegistryServer) -> None:
    image = planted
    outputs: dict[str, str] = {}
    cache = tmp_path / "cache"
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("GITHUB_", "GITLAB_", "CI_", "RUNNER_"))}
    environment.update({"CI_GATE_CACHE_DIR": str(cache), "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    reference = f"oci-dir:{image.oci.path}"

    # analyze, every format; the first run fills the cache, the later ones read it.
    for output in ("json", "cyclonedx-json", "spdx-json", "table"):
        done = _run(["analyze", reference, "-o", output, "--dockerfile", str(image.dockerfile)], environment, tmp_path)
        assert done.returncode == 0, done.stderr
        outputs[f"analyze -o {output} stdout"], outputs[f"analyze -o {output} stderr"] = done.stdout, done.stderr
    analysis = json.loads(outputs["analyze -o json stdout"])

    # The places were really described (else the test would pass by missing them).
    types = {package["type"] for package in analysis["packages"]}
    assert {"deb", "python", "npm", "go-module"} <= types, types
    assert {"AWS_SECRET_KEY", "NPM_AUTH_TOKEN", "PRIV_KEY", "GITHUB_TOKEN"} <= {s["rule"] for s in analysis["secrets"]}
    paths = {record["path"] for record in analysis["files"]}
    assert "/opt/app/ghp_****.json" in paths and "/opt/app/AKIA****.csv" in paths
    links = {record["path"]: record["link_target"] for record in analysis["files"] if record["kind"] == "symlink"}
    assert links["/opt/app/token-link"] == "/run/secrets/glpa****"
    assert analysis["config"]["working_dir"] == "/srv/xoxp****"
    assert analysis["config"]["labels"]["com.acme.api-token"].endswith("****")
    assert "****" in json.dumps(analysis["config"]["healthcheck"])
    assert any("****" in user["gecos"] for user in analysis["users"])
    env = {variable["name"]: variable["value"] for variable in analysis["config"]["env"]}
    assert re.fullmatch(r"postgres://app:\w{0,4}\*\*\*\*@db\.internal:5432/app", env["DATABASE_URL"])
    npm = next(package for package in analysis["packages"] if package["type"] == "npm")
    assert re.fullmatch(r"https://deploy:\w{0,4}\*\*\*\*@npm\.example\.com/leaky", npm["metadata"]["homepage"])
    go_main = next(package for package in analysis["packages"] if package["name"] == "example.com/tool")
    settings = json.dumps(go_main["metadata"])
    assert "main.apiToken=" in settings and "main.dbPassword=" in settings

    # gate: every report, as a GitHub Actions step (annotations on stdout, summary, outputs).
    reports = tmp_path / "reports"
    reports.mkdir()
    vuln_db = build_vuln_db(tmp_path / "vulns")
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(reports / "step-summary.md"),
              "GITHUB_OUTPUT": str(reports / "github-output.txt"), "CI_GATE_OUTPUT": str(reports / "ci-output.env")}
    arguments = ["gate", reference, "--policy", "builtin:dod", "--vuln-db", str(vuln_db), "--dockerfile",
                 str(image.dockerfile), "--tag", "registry.example.com/acme/leaky:1", "--comment", "off"]
    for flag, name in (("--json", "e.json"), ("--junit", "junit.xml"), ("--sarif", "r.sarif"),
                       ("--gitlab-report", "gl.json"), ("--codequality", "cq.json"), ("--markdown", "s.md"),
                       ("--compliance", "c.md")):
        arguments += [flag, str(reports / name)]
    done = _run(arguments, {**environment, **github}, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    outputs["gate stdout"], outputs["gate stderr"] = done.stdout, done.stderr
    assert "::error" in done.stdout  # the annotations were written
    outputs.update(_files_under(reports))
    assert len([name for name in outputs if name.startswith(str(reports))]) == 10

    # The analysis cache.
    cached = dict(_files_under(cache))
    assert cached, "analyze wrote its cache"
    outputs.update(cached)

    # Hostile documents: a token in a media type or a digest is not echoed on stderr.
    for layout, kind in _hostile_documents(image, tmp_path / "hostile"):
        done = _run(["analyze", f"oci-dir:{layout}", "--no-cache"], environment, tmp_path)
        assert done.returncode == 2, (kind, done.stdout, done.stderr)
        outputs[f"analyze with a hostile {kind}: stderr"] = done.stderr + done.stdout

    # ci-gate serve: the image pulled from a real registry with its Dockerfile; every answer, and the log.
    tag = push(image.oci, registry.host, "planted/leaky:1")
    with ServeProcess(tmp_path / "serve", vuln_db=vuln_db, workers=1,
                      environment={"DOCKER_CONFIG": str(tmp_path / "no-docker-config")}) as server:
        added = server.add_tag(tag, dockerfile=image.dockerfile.read_text())
        assert added.status_code == 200, added.text
        digest = added.json()["image_digest"]
        assert server.wait_status(digest)["analysis_status"] == "analyzed"
        outputs["serve POST /v2/images"] = added.text
        for path in (f"/v2/images/{digest}", f"/v1/images/{digest}", f"/v2/images/{digest}/vuln/all",
                     f"/v2/images/{digest}/check?tag={tag}", f"/v1/images/{digest}/check?tag={tag}"):
            response = server.get(path)
            assert response.status_code == 200, (path, response.text)
            outputs[f"serve GET {path}"] = response.text
        content_types = server.get(f"/v2/images/{digest}/content").json()
        for content_type in content_types:
            for version in ("v1", "v2"):
                response = server.get(f"/{version}/images/{digest}/content/{content_type}")
                assert response.status_code == 200, (content_type, response.text)
                outputs[f"serve GET /{version}/images/content/{content_type}"] = response.text
        assert "leaky-npm" in outputs["serve GET /v2/images/content/npm"]
        # Anchore returns the submitted Dockerfile in base64: grepped decoded too.
        for version in ("v1", "v2"):
            for found in _values_of("dockerfile", json.loads(outputs[f"serve GET /{version}/images/{digest}"])):
                outputs[f"serve {version} dockerfile, decoded"] = base64.b64decode(found).decode()
        assert "ARG SIGNING_KEY=" in outputs["serve v2 dockerfile, decoded"]  # returned, masked
        outputs["serve log"] = server.log_path.read_text(errors="replace")

    windows = image.planted.windows()
    assert len(image.planted.values) >= 30
    leaks = sorted({(windows[window], name) for name, text in outputs.items() for window in windows
                    if window in text})
    assert leaks == [], "planted secrets found in outputs:\n" + "\n".join(f"{place} -> {name}"
                                                                         for place, name in leaks)
