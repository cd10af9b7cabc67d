"""A fleet of `ci-gate serve` replicas on one PostgreSQL, and the gate clients that load it
(shared by tests/server/test_fleet.py and bench/bench_fleet.py).

Images: distinct tiny images in three kinds whose verdicts differ under the default policy and
the store of tests/support/serve.py (`build_vuln_db`): `stop` keeps the critical openssl, `warn`
has the fixed openssl but the medium `demo` flaw, `go` has neither. All of them go into ONE OCI
layout (the shared base layers are written once) and are pushed with the registry's own HTTP API
(distribution spec: blob upload, then manifest), eight at a time, where a skopeo process per
image would cost its start-up fifty times on a busy machine.

Clients: `gate_in_thread` runs the code `ci-gate gate --backend anchore` runs (`AnchoreBackend.run`,
then the CLI's `exit_code_for`), in a thread; `start_gate_subprocess` runs the real command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.oci import OciImage, TarItem, build_oci_layout
from tests.support.serve import PASSWORD, ServeProcess
from tests.support.tiny import TINY_CONFIG, TINY_DPKG_STATUS, TINY_OS_RELEASE, TINY_PYTHON_METADATA

DATABASE_VARIABLE = "CI_GATE_DATABASE"
"""The environment variable `ci-gate serve --database` falls back to."""
ADMIN_SCHEMA = "ci_gate_account_admin"
"""The PostgreSQL schema holding the admin account's tables (images, analyses, events)."""

KINDS = ("stop", "warn", "go")
"""Image kinds, by the verdict the default policy gives them (checked against the local backend)."""

FIXED_OPENSSL = b"Version: 3.0.13-1~deb12u1"
"""The version the made-up Debian advisory says is fixed."""


@dataclass(frozen=True)
class FleetImage:
    """One pushed image and the gate verdict it must get."""

    index: int
    kind: str
    """stop, warn or go: what it was built to get."""
    tag: str
    """`127.0.0.1:PORT/fleet/appN:vN`, the reference the clients gate."""
    digest: str
    oci: OciImage


def _layers(index: int, kind: str) -> list[list[TarItem]]:
    status = TINY_DPKG_STATUS if kind == "stop" else TINY_DPKG_STATUS.replace(b"Version: 3.0.11-1~deb12u2",
                                                                             FIXED_OPENSSL)
    demo_version = b"1.1" if kind == "go" else b"1.0"
    directories = [TarItem(path, kind="dir", mode=0o755) for path in ("etc", "usr", "usr/lib", "var", "var/lib",
                                                                       "var/lib/dpkg")]
    distro = [*directories, TarItem("usr/lib/os-release", TINY_OS_RELEASE),
              TarItem("etc/os-release", kind="symlink", link_target="../usr/lib/os-release", mode=0o777),
              TarItem("var/lib/dpkg/status", status)]
    dist_info = f"usr/lib/python3/dist-packages/demo-{demo_version.decode()}.dist-info"
    python = [*[TarItem(path, kind="dir", mode=0o755) for path in ("usr/lib/python3", "usr/lib/python3/dist-packages",
                                                                   dist_info)],
              TarItem(f"{dist_info}/METADATA", TINY_PYTHON_METADATA.replace(b"Version: 1.0",
                                                                            b"Version: " + demo_version))]
    # The variant layer makes each digest distinct.
    variant = [TarItem("opt", kind="dir", mode=0o755), TarItem("opt/variant", f"variant {index}\n".encode())]
    return [distro, python, variant]


def build_fleet_images(layout: Path, count: int) -> list[tuple[int, str, OciImage]]:
    """`count` distinct images in one layout, kinds in turn (stop, warn, go, stop…); (index, kind, image) each."""
    images = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        history: list[dict[str, Any]] = [{"created": "1970-01-01T00:00:00Z", "created_by": f"ADD layer {n} /"}
                                         for n in range(3)]
        config: dict[str, Any] = dict(TINY_CONFIG)
        if kind == "go":  # also clean of the default policy's warnings: a user and a health check
            config.update(User="1000", Healthcheck={"Test": ["CMD", "true"]})
            history.append({"created": "1970-01-01T00:00:00Z", "empty_layer": True,
                            "created_by": '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "true"]}'})
        oci = build_oci_layout(layout, _layers(index, kind), tag=f"v{index}",
                               config=config, history=history)
        images.append((index, kind, oci))
    return images


def push_http(oci: OciImage, registry_host: str, repository: str, tag: str,
              session: requests.Session | None = None) -> str:
    """Push one image of a layout with the registry API (monolithic blob uploads); `HOST/REPO:TAG`."""
    http = session or requests.Session()
    base = f"http://{registry_host}/v2/{repository}"
    for digest in (*oci.layer_digests, oci.config_digest):
        if http.head(f"{base}/blobs/{digest}", timeout=30).status_code == 200:
            continue
        started = http.post(f"{base}/blobs/uploads/", timeout=30)
        started.raise_for_status()
        location = started.headers["Location"]
        location = location if location.startswith("http") else f"http://{registry_host}{location}"
        separator = "&" if "?" in location else "?"
        http.put(f"{location}{separator}digest={digest}", data=oci.blob_path(digest).read_bytes(),
                 headers={"Content-Type": "application/octet-stream"}, timeout=60).raise_for_status()
    manifest = oci.blob_path(oci.manifest_digest).read_bytes()
    media_type = json.loads(manifest)["mediaType"]
    pushed = http.put(f"{base}/manifests/{tag}", data=manifest, headers={"Content-Type": media_type}, timeout=30)
    pushed.raise_for_status()
    assert pushed.headers.get("Docker-Content-Digest") == oci.manifest_digest, "the registry rewrote the manifest"
    return f"{registry_host}/{repository}:{tag}"


def push_fleet_images(built: list[tuple[int, str, OciImage]], registry_host: str) -> list[FleetImage]:
    """Push every image, eight at a time (the registry's answers, not our CPU, are the wait)."""
    local = threading.local()

    def push_one(entry: tuple[int, str, OciImage]) -> FleetImage:
        index, kind, oci = entry
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return FleetImage(index=index, kind=kind, digest=oci.manifest_digest, oci=oci,
                          tag=push_http(oci, registry_host, f"fleet/app{index}", f"v{index}", local.session))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(push_one, built))


def local_verdicts(built: list[tuple[int, str, OciImage]], vuln_db: Path) -> dict[str, str]:
    """kind → the final action the LOCAL backend gives the first image of that kind: what the server's
    default policy must give every image of the kind."""
    from ci_gate.backends.interface import BackendRequest
    from ci_gate.backends.local import LocalBackend

    verdicts = {}
    for _index, kind, oci in built:
        if kind not in verdicts:
            evaluation = LocalBackend().run(BackendRequest(image=f"oci-dir:{oci.path}:{oci.tag}", vuln_db=vuln_db,
                                                           use_cache=False)).evaluation
            verdicts[kind] = evaluation.final_action.upper()
    return verdicts


# --- clients -------------------------------------------------------------------------------------


@dataclass
class ClientOutcome:
    """What one gate client got."""

    image: FleetImage
    final_action: str | None = None
    exit_code: int | None = None
    error: str | None = None
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)
    how: str = "thread"
    """thread (AnchoreBackend in this process) or subprocess (`ci-gate gate --backend anchore`)."""


def gate_in_thread(url: str, image: FleetImage, outcome: ClientOutcome, timeout: float, poll_interval: float) -> None:
    """What `ci-gate gate --backend anchore registry:TAG` does, minus argument parsing and reports."""
    from ci_gate.backends.anchore import AnchoreBackend
    from ci_gate.backends.interface import AnchoreOptions, BackendRequest
    from ci_gate.errors import EXIT_ERROR, CiGateError
    from ci_gate.gate import FailOn, exit_code_for

    start = time.monotonic()
    try:
        result = AnchoreBackend(environ={}, log=outcome.log.append).run(BackendRequest(
            image=f"registry:{image.tag}", anchore=AnchoreOptions(url=url, username="admin", password=PASSWORD,
                                                                  timeout=timeout, poll_interval=poll_interval)))
        if result.evaluation.image_digest != image.digest:
            raise AssertionError(f"answer for {result.evaluation.image_digest}, asked about {image.digest}")
        outcome.final_action = result.evaluation.final_action.upper()
        outcome.exit_code = exit_code_for(outcome.final_action, FailOn.STOP)
    except CiGateError as error:  # what the CLI turns into exit 2 (--on-error fail)
        outcome.error = str(error)
        outcome.exit_code = EXIT_ERROR
    except Exception as error:
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.seconds = time.monotonic() - start


def start_gate_subprocess(url: str, outcome: ClientOutcome, report: Path, timeout: float,
                          poll_interval: float) -> subprocess.Popen[str]:
    """The real command line; the password from the environment, as in CI."""
    image = outcome.image
    outcome.how = "subprocess"
    outcome.seconds = -time.monotonic()  # finish_gate_subprocess adds the end time
    environment = {**os.environ, "ANCHORE_URL": url, "ANCHORE_USER": "admin", "ANCHORE_PASS": PASSWORD}
    return subprocess.Popen(
        [sys.executable, "-m", "ci_gate.cli", "gate", f"registry:{image.tag}", "--backend", "anchore",
         "--timeout", str(timeout), "--poll-interval", str(poll_interval), "--json", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, stdin=subprocess.DEVNULL)


def finish_gate_subprocess(process: subprocess.Popen[str], report: Path, outcome: ClientOutcome,
                           timeout: float) -> None:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    outcome.exit_code = process.returncode
    outcome.log = stderr.splitlines()
    if report.exists():
        document: dict[str, Any] = json.loads(report.read_text())  # Anchore's v2 evaluation shape
        if document.get("image_digest") == outcome.image.digest:
            outcome.final_action = str(document["evaluations"][0]["final_action"]).upper()
    if process.returncode not in (0, 1):
        outcome.error = (stderr or stdout).strip()[-2000:]
    outcome.seconds += time.monotonic()


def run_clients_in_threads(url: str, outcomes: list[ClientOutcome], timeout: float,
                           poll_interval: float) -> list[threading.Thread]:
    """One started thread per outcome (`outcomes[i].image` is what client i gates)."""
    threads = [threading.Thread(target=gate_in_thread, args=(url, outcome.image, outcome, timeout, poll_interval),
                                daemon=True, name=f"gate-client-{number}") for number, outcome in enumerate(outcomes)]
    for thread in threads:
        thread.start()
    return threads


# --- replicas ------------------------------------------------------------------------------------


def start_replica(root: Path, name: str, database_url: str, vuln_db: Path, role: str, workers: int,
                  extra_args: list[str] | None = None, environment: dict[str, str] | None = None) -> ServeProcess:
    """One `ci-gate serve --database URL --role ROLE` with a data dir of its own (what stays per replica);
    the URL reaches it through the environment, as the Helm chart passes it from a Secret."""
    root.mkdir(parents=True, exist_ok=True)
    replica = ServeProcess(root / name, vuln_db=vuln_db, workers=workers,
                           environment={DATABASE_VARIABLE: database_url, **(environment or {})},
                           extra_args=["--role", role, *(extra_args or [])])
    return replica.start()


def database_rows(database_url: str, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one query on the fleet's database (the admin account's tables), in a connection of its own."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f"SET search_path TO {ADMIN_SCHEMA}")
        return list(connection.execute(sql, parameters).fetchall())
