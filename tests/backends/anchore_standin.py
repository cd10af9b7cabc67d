"""A stand-in for an Anchore Enterprise (v2) or anchore-engine (v1) server on 127.0.0.1.

Anchore Enterprise cannot run here, so the client is tested against this small server whose answers
are shaped exactly as Anchore's API specs document them (v2: Anchore Enterprise's OpenAPI spec,
anchore/enterprise-client-go pkg/anchore-api-swagger-main.yaml; v1: anchore-engine's
anchore_engine/services/apiext/swagger/swagger.yaml): auth, account header and both error bodies (v2
`{code, error_type, message, detail}`, v1 `{message, httpcode, detail}`), add image (v2 object, v1
one-element array), `analysis_status` moving over successive polls and the v1 "image is not
analyzed" 404, the check (v1 table, v2 findings), vulnerabilities, content. Faults are queued per
request path: a status with a body and headers (5xx bursts, 429 with Retry-After) or a dropped
connection (a reset).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DIGEST = "sha256:" + "ab" * 32
IMAGE_ID = "cd" * 32
POLICY_ID = "2c53a13c-1765-11e8-82ef-23527761d060"
RULE_SET_ID = "48e6f7d6-1765-11e8-b5f9-8b6f228548b6"
TIMESTAMP = "2024-06-21T10:00:00Z"

POLICY_V2: dict[str, Any] = {
    "id": POLICY_ID, "name": "Default policy", "version": "2", "description": "Default policy",
    "rule_sets": [{"id": RULE_SET_ID, "name": "DefaultPolicy", "version": "2", "artifact_type": "image",
                   "description": "System default rule set", "rules": [
                       {"id": "ce7b8000-829b-4c27-8122-69cd59018400", "gate": "dockerfile",
                        "trigger": "exposed_ports", "action": "STOP",
                        "params": [{"name": "ports", "value": "22"}, {"name": "type", "value": "denylist"}]},
                       {"id": "b30e8abc-444f-45b1-8a37-55be1b8c8bb5", "gate": "vulnerabilities",
                        "trigger": "package", "action": "STOP",
                        "params": [{"name": "package_type", "value": "all"},
                                   {"name": "severity_comparison", "value": ">"},
                                   {"name": "severity", "value": "medium"}],
                        "recommendation": "Upgrade the package to a fixed version"}]}],
    "allowlists": [{"id": "37fd763e-1765-11e8-add4-3b16c029ac5c", "name": "Global Allowlist", "version": "2",
                    "items": [{"id": "rule1", "gate": "dockerfile", "trigger_id": "ports+*",
                               "expires_on": "2026-12-30T12:00:00Z"}]}],
    "mappings": [{"id": "c4f9bf74-dc38-4ddf-b5cf-00e9c0074611", "name": "default", "registry": "*",
                  "repository": "*", "image": {"type": "tag", "value": "*"}, "rule_set_ids": [RULE_SET_ID],
                  "allowlist_ids": ["37fd763e-1765-11e8-add4-3b16c029ac5c"]}],
    "allowlisted_images": [], "denylisted_images": [],
}

VULN_MESSAGE = ("CRITICAL Vulnerability found in os package type (APKG) - libssl1.1 (fixed in: 1.1.1l-r0)"
                "(CVE-2021-3711 - https://nvd.nist.gov/vuln/detail/CVE-2021-3711)")
PORT_MESSAGE = "Dockerfile exposes port (22) which is in policy file DENIEDPORTS list"

FINDINGS_V2: list[dict[str, Any]] = [
    {"trigger_id": "CVE-2021-3711+libssl1.1", "gate": "vulnerabilities", "trigger": "package",
     "message": VULN_MESSAGE, "action": "stop", "policy_id": RULE_SET_ID,
     "rule_id": "b30e8abc-444f-45b1-8a37-55be1b8c8bb5", "recommendation": "Upgrade the package to a fixed version",
     "allowlisted": False, "allowlist_match": None, "inherited_from_base": True},
    {"trigger_id": "ports+22", "gate": "dockerfile", "trigger": "exposed_ports", "message": PORT_MESSAGE,
     "action": "go", "policy_id": RULE_SET_ID, "rule_id": "ce7b8000-829b-4c27-8122-69cd59018400",
     "recommendation": "", "allowlisted": True,
     "allowlist_match": {"id": "37fd763e-1765-11e8-add4-3b16c029ac5c", "name": "Global Allowlist",
                         "matched_rule_id": "rule1"},
     "inherited_from_base": False},
]

VULNERABILITY_V1: dict[str, Any] = {
    "vuln": "CVE-2021-3711", "severity": "Critical", "url": "https://nvd.nist.gov/vuln/detail/CVE-2021-3711",
    "fix": "1.1.1l-r0", "package": "libssl1.1-1.1.1k-r0", "package_name": "libssl1.1",
    "package_version": "1.1.1k-r0", "package_type": "APKG", "package_cpe": "None",
    "package_cpe23": "cpe:2.3:a:openssl:openssl:1.1.1k:*:*:*:*:*:*:*", "package_path": "pkgdb",
    "feed": "vulnerabilities", "feed_group": "alpine:3.14", "will_not_fix": False,
    "nvd_data": [{"id": "CVE-2021-3711", "cvss_v2": {"base_score": 7.5, "exploitability_score": 10.0,
                                                     "impact_score": 6.4},
                  "cvss_v3": {"base_score": 9.8, "exploitability_score": 3.9, "impact_score": 5.9}}],
    "vendor_data": [],
}


def vulnerability_v2() -> dict[str, Any]:
    item = {key: value for key, value in VULNERABILITY_V1.items() if key != "package_cpe23"}
    item.update({"description": "SM2 decryption buffer overflow", "purl": "pkg:apk/alpine/libssl1.1@1.1.1k-r0",
                 "detected_at": TIMESTAMP, "fix_observed_at": TIMESTAMP, "suggested_fix_version": "1.1.1l-r0",
                 "is_kev": False, "epss": [], "annotation_status": None, "annotation_uuid": None,
                 "inherited_from_base": True})
    return item


@dataclass
class Fault:
    """One injected answer: an HTTP status with a body, or `reset` (the connection dropped)."""

    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


@dataclass
class AnchoreStandIn:
    """The server's state and knobs; tests change them between or during runs."""

    version: str = "v2"
    """v2 (Enterprise) or v1 (anchore-engine): routes, key names and shapes follow it."""
    users: dict[str, str] = field(default_factory=lambda: {"admin": "s3cret-Passw0rd"})
    """user → password; `_api_key` → the key value."""
    accounts: dict[str, str] = field(default_factory=lambda: {"admin": "admin"})
    """user → own account (admin may act in `other_accounts`)."""
    other_accounts: tuple[str, ...] = ("team-a",)
    states: list[str] = field(default_factory=lambda: ["not_analyzed", "analyzing", "analyzing", "analyzed"])
    """analysis_status seen by successive GET /images/{digest} after an add; the last one stays."""
    failure_detail: str = "failed to pull image: manifest unknown"
    final_action: str = "stop"
    final_action_reason: str = "policy_evaluation"
    policy_action: str = "stop"
    active_policy: bool = True
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    """Path regex → answers to give (in order) before the normal one."""
    requests: list[tuple[str, str, dict[str, Any], Any]] = field(default_factory=list)
    """(method, path, query, JSON body) of every request, for assertions."""
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    """digest → {"polls": n, "tag": ..., "annotations": ..., "dockerfile": ...}."""
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fault(self, path_pattern: str, *faults: Fault) -> None:
        self.faults.setdefault(path_pattern, []).extend(faults)

    # --- shapes ----------------------------------------------------------------------------------

    def state_of(self, digest: str) -> str:
        entry = self.known[digest]
        return self.states[min(entry["polls"], len(self.states) - 1)]

    def image_v2(self, digest: str) -> dict[str, Any]:
        entry = self.known[digest]
        state = self.state_of(digest)
        registry, _, rest = entry["tag"].partition("/")
        repo, _, tag = rest.rpartition(":")
        detail: list[dict[str, Any]] = []
        if state == "analysis_failed":
            detail = [{"from_status": "analyzing", "to_status": "analysis_failed", "timestamp": TIMESTAMP,
                       "source": "analyzer", "detail": self.failure_detail}]
        return {
            "image_digest": digest, "parent_digest": digest, "account_name": "admin",
            "annotations": entry["annotations"], "image_status": "active", "analysis_status": state,
            "analysis_status_detail": detail, "record_version": "v2", "created_at": TIMESTAMP,
            "last_updated": TIMESTAMP,
            "image_content": {"metadata": {"arch": "amd64", "distro": "alpine", "distro_version": "3.14.2",
                                           "extended_support": False, "dockerfile_mode": "Actual",
                                           "image_size": 5_800_000, "layer_count": 1}},
            "image_detail": [{"image_digest": digest, "image_id": IMAGE_ID, "registry": registry, "repo": repo,
                              "tag": tag, "full_tag": entry["tag"], "full_digest": f"{registry}/{repo}@{digest}",
                              "dockerfile": entry["dockerfile"], "account_name": "admin",
                              "tag_detected_at": TIMESTAMP, "created_at": TIMESTAMP, "last_updated": TIMESTAMP}],
        }

    def image_v1(self, digest: str) -> dict[str, Any]:
        entry = self.known[digest]
        registry, _, rest = entry["tag"].partition("/")
        repo, _, tag = rest.rpartition(":")
        return {
            "imageDigest": digest, "parentDigest": digest, "userId": "admin", "image_type": "docker",
            "analysis_status": self.state_of(digest), "image_status": "active", "analyzed_at": None,
            "created_at": TIMESTAMP, "last_updated": TIMESTAMP, "annotations": entry["annotations"],
            "image_content": {"metadata": {"arch": "amd64", "distro": "alpine", "distro_version": "3.14.2",
                                           "dockerfile_mode": "Actual", "image_size": 5_800_000,
                                           "layer_count": 1}},
            "image_detail": [{"registry": registry, "repo": repo, "tag": tag, "digest": digest, "imageId": IMAGE_ID,
                              "dockerfile": entry["dockerfile"], "fulltag": entry["tag"],
                              "fulldigest": f"{registry}/{repo}@{digest}", "tag_detected_at": TIMESTAMP,
                              "created_at": TIMESTAMP, "last_updated": TIMESTAMP, "userId": "admin",
                              "imageDigest": digest}],
        }

    def check_v2(self, digest: str, tag: str) -> dict[str, Any]:
        denied = self.final_action_reason == "denylisted"
        allowed = self.final_action_reason == "allowlisted"
        image_rule = {"id": "d1", "name": "no centos", "registry": "*", "repository": "*",
                      "image": {"type": "tag", "value": "*"}}
        return {"policy_id": POLICY_ID, "image_digest": digest, "evaluated_tag": tag, "evaluations": [{
            "evaluation_time": TIMESTAMP, "status": "fail" if self.final_action == "stop" else "pass",
            "final_action": self.final_action, "final_action_reason": self.final_action_reason,
            "image_allowlisted": allowed, "matched_allowlisted_images_rule": image_rule if allowed else None,
            "image_denylisted": denied, "matched_denylisted_images_rule": image_rule if denied else None,
            "image_mapped_to_rule": True, "matched_mapping_rule": POLICY_V2["mappings"][0],
            "number_of_findings": len(FINDINGS_V2), "evaluation_problems": [],
            "comparison_image_digest": digest,
            "details": {"policy_action": self.policy_action, "policy": POLICY_V2, "remediations": [],
                        "findings": FINDINGS_V2}}]}

    def check_v1(self, digest: str, tag: str) -> list[Any]:
        header = ["Image_Id", "Repo_Tag", "Trigger_Id", "Gate", "Trigger", "Check_Output", "Gate_Action",
                  "Whitelisted", "Policy_Id"]
        rows = [
            [IMAGE_ID, tag, "CVE-2021-3711+libssl1.1", "vulnerabilities", "package", VULN_MESSAGE, "stop", False,
             RULE_SET_ID],
            [IMAGE_ID, tag, "ports+22", "dockerfile", "exposed_ports", PORT_MESSAGE, "go",
             {"whitelist_name": "Global Whitelist", "whitelist_id": "37fd763e-1765-11e8-add4-3b16c029ac5c",
              "matched_rule_id": "rule1"}, RULE_SET_ID],
        ]
        reason = {"denylisted": "blacklisted", "allowlisted": "whitelisted"}.get(self.final_action_reason,
                                                                                 self.final_action_reason)
        bundle = {"id": POLICY_ID, "version": "1_0", "name": "Default bundle", "comment": "Default bundle",
                  "whitelisted_images": [], "blacklisted_images": [],
                  "mappings": [{"id": "c4f9bf74-dc38-4ddf-b5cf-00e9c0074611", "name": "default", "registry": "*",
                                "repository": "*", "image": {"type": "tag", "value": "*"},
                                "policy_id": RULE_SET_ID,
                                "whitelist_ids": ["37fd763e-1765-11e8-add4-3b16c029ac5c"]}],
                  "whitelists": [], "policies": [{"id": RULE_SET_ID, "version": "1_0", "name": "DefaultPolicy",
                                                  "rules": POLICY_V2["rule_sets"][0]["rules"]}]}
        result = {
            "user_id": "admin", "image_id": IMAGE_ID, "tag": tag, "bundle": bundle,
            "matched_mapping_rule": bundle["mappings"][0],
            "matched_whitelisted_images_rule": {"name": "trusted"} if reason == "whitelisted" else False,
            "matched_blacklisted_images_rule": {"name": "no centos"} if reason == "blacklisted" else False,
            "final_action": self.final_action, "final_action_reason": reason,
            "result": {IMAGE_ID: {"result": {"header": header, "row_count": len(rows), "rows": rows,
                                             "final_action": self.policy_action}},
                       "policy_data": [], "whitelist_data": [], "policy_name": "", "whitelist_names": []},
            "created_at": 1522454550, "last_modified": 1522454550, "evaluation_problems": [],
            "image_digest": digest, "status": "fail" if self.final_action == "stop" else "pass",
        }
        return [{digest: {tag: [{"policyId": POLICY_ID, "status": result["status"], "last_evaluation": TIMESTAMP,
                                 "detail": {"result": result, "policy": bundle}}]}}]

    def error(self, status: int, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
        """Both documented error shapes: v2 the declared ApiErrorResponse, v1 what the engine sends."""
        if self.version == "v2":
            return {"code": status, "error_type": "APIError", "message": message, "detail": detail or {}}
        return {"message": message, "httpcode": status, "detail": {**(detail or {}), "error_codes": []}}

    # --- serving ---------------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[AnchoreStandIn]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:
                stand_in.handle(self, "GET")

            def do_POST(self) -> None:
                stand_in.handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.requests.append((method, parts.path, query, body))
        for pattern, queue in self.faults.items():
            if queue and re.fullmatch(pattern, parts.path):
                fault = queue.pop(0)
                if fault.reset:
                    # SO_LINGER 0: close with a TCP RST, as a crashed proxy or server does.
                    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    handler.connection.close()
                    handler.close_connection = True
                    return
                self.send(handler, fault.status, fault.body if fault.body is not None else
                          self.error(fault.status, "service unavailable"), fault.headers)
                return
        status, answer = self.route(handler, method, parts.path, query, body)
        self.send(handler, status, answer)

    def send(self, handler: BaseHTTPRequestHandler, status: int, answer: Any,
             headers: dict[str, str] | None = None) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def authorised(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]] | None:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return 401, self.error(401, "Unauthorized")
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if self.users.get(user) != password:
            return 401, self.error(401, "Unauthorized")
        account = handler.headers.get("x-anchore-account")
        if account and account != self.accounts.get(user) and not (user == "admin" and account in self.other_accounts):
            return 403, self.error(403, "Access Denied", {"permission_required": f"account:{account}"})
        return None

    def route(self, handler: BaseHTTPRequestHandler, method: str, path: str, query: dict[str, str],
              body: Any) -> tuple[int, Any]:
        prefix = f"/{self.version}"
        if path == "/v1/" and self.version == "v1":
            return 200, "v1"
        if not path.startswith(prefix + "/"):
            return 404, {"detail": "Not Found", "status": 404, "title": "Not Found", "type": "about:blank"}
        denied = self.authorised(handler)
        if denied:
            return denied
        path = path[len(prefix):]
        v2 = self.version == "v2"
        if path == "/version":
            return 200, {"service": {"version": "5.14.0"}, "api": {"version": "2"}, "db": {"schema_version": "5140"}}
        if path == "/images" and method == "POST":
            return self.add(body, query)
        match = re.fullmatch(r"/images/(sha256:[0-9a-f]{64})(/.*)?", path)
        if not match or match.group(1) not in self.known:
            return 404, self.error(404, "image not found")
        digest, rest = match.group(1), match.group(2) or ""
        if rest == "":
            answer = self.image_v2(digest) if v2 else [self.image_v1(digest)]
            self.known[digest]["polls"] += 1
            return 200, answer
        if self.state_of(digest) != "analyzed":
            return 404, self.error(404, f"image is not analyzed - analysis_status: {self.state_of(digest)}")
        if rest == "/check":
            if "tag" not in query:
                return 400, self.error(400, "tag is required")
            if not self.active_policy and not query.get("policy_id" if v2 else "policyId"):
                return 404, self.error(404, "user has no active policy to evaluate")
            return 200, self.check_v2(digest, query["tag"]) if v2 else self.check_v1(digest, query["tag"])
        if rest == "/vuln/all":
            if v2:
                return 200, {"image_digest": digest, "base_digest": None, "base_image_problems": [],
                             "vulnerability_type": "all", "extended_support": False,
                             "vulnerabilities": [vulnerability_v2()]}
            return 200, {"imageDigest": digest, "vulnerability_type": "all", "vulnerabilities": [VULNERABILITY_V1]}
        if rest == "/content":
            return 200, ["os", "files", "npm", "gem", "python", "java", "binary", "go", "malware"]
        if rest == "/content/os":
            item: dict[str, Any] = {"package": "libssl1.1", "version": "1.1.1k-r0", "size": "1234", "type": "APKG",
                    "origin": "Natanael Copa <ncopa@alpinelinux.org>", "licenses": ["OpenSSL"],
                    "location": "/lib/apk/db/installed", "cpes": []}
            if v2:
                item.update({"metadata_type": "ApkMetadata", "metadata": {}, "purl": "pkg:apk/alpine/libssl1.1"})
            else:
                item["license"] = "OpenSSL"
            return 200, {"image_digest" if v2 else "imageDigest": digest, "content_type": "os", "content": [item]}
        if rest.startswith("/content/"):
            return 200, {"image_digest" if v2 else "imageDigest": digest, "content_type": rest[9:], "content": []}
        return 404, self.error(404, "not found")

    def add(self, body: Any, query: dict[str, str]) -> tuple[int, Any]:
        v2 = self.version == "v2"
        pull = "pull_string" if v2 else "pullstring"
        source = (body or {}).get("source") or {}
        if "digest" in source:
            digest = source["digest"][pull].split("@", 1)[1]
            tag = source["digest"]["tag"]
            dockerfile = source["digest"].get("dockerfile")
        elif "tag" in source:
            tag = source["tag"][pull]
            digest = DIGEST
            dockerfile = source["tag"].get("dockerfile")
        else:
            return 400, self.error(400, "no source given")
        force = query.get("force") == "true"
        if digest in self.known and dockerfile and not force:
            return 400, self.error(400, "Cannot specify dockerfile for an image that already exists unless using "
                                        "force=True for re-analysis")
        entry = self.known.get(digest)
        if entry is None or force or self.state_of(digest) == "analysis_failed":
            self.known[digest] = {"polls": 0, "tag": tag, "annotations": (body or {}).get("annotations") or {},
                                  "dockerfile": dockerfile}
        answer = self.image_v2(digest) if v2 else [self.image_v1(digest)]
        return 200, answer
