"""Fuzzing serve's request handling in-process: odd methods, paths, headers, query strings and bodies.

Whatever arrives, the answer is never a 500 (an unhandled error), never a 2xx without valid
credentials, never a `pass` for an image under a policy that stops everything, and never carries
the admin password. The suite runs a few hundred examples; CI_GATE_SERVE_FUZZ_EXAMPLES runs more.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ci_gate.model import to_dict
from ci_gate.server.app import ServerConfig, create_app
from ci_gate.server.limits import MAX_BODY_BYTES
from ci_gate.server.worker import summary
from tests.server.asgi_driver import Answer, Driver
from tests.server.raw_http import connect, read_answer
from tests.support.serve import PASSWORD, ServeProcess
from tests.support.tiny import build_tiny_image

EXAMPLES = int(os.environ.get("CI_GATE_SERVE_FUZZ_EXAMPLES", "300"))

DENY_ALL = {
    "id": "deny-all", "name": "deny all", "version": "2", "description": "stops every image",
    "rule_sets": [{"id": "rs1", "name": "always", "version": "2", "rules": [
        {"id": "r1", "gate": "always", "trigger": "always", "action": "stop", "params": []}]}],
    "allowlists": [], "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*",
                                    "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs1"],
                                    "allowlist_ids": []}],
}


class Target:
    """The application with an analysed image, a deny-all active policy and an API key."""

    def __init__(self, driver: Driver, digest: str, tag: str, api_key: str) -> None:
        self.driver = driver
        self.digest = digest
        self.tag = tag
        self.api_key = api_key


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, serve_vuln_db: Path) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("serve-fuzz")
    with pytest.MonkeyPatch.context() as patch:
        # Every registry request the fuzzer provokes goes to a closed local port: no DNS, no traffic out.
        for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            patch.setenv(variable, "http://127.0.0.1:9")
        for variable in ("NO_PROXY", "no_proxy"):
            patch.delenv(variable, raising=False)
        patch.setenv("DOCKER_CONFIG", str(root / "docker-config"))
        from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image

        image = build_tiny_image(root / "oci")
        analysis = analyze_image(f"oci-dir:{image.path}", AnalyzeOptions(use_cache=False))
        app = create_app(ServerConfig(data_dir=root / "data", admin_password=PASSWORD, vuln_db=serve_vuln_db,
                                      workers=0, registry_deadline=2.0))
        service = app.state.service
        service.start()
        store = service.store
        digest = image.manifest_digest
        tag = "127.0.0.1:1/fuzz/tiny:v1"
        store.add_image(digest, f"127.0.0.1:1/fuzz/tiny@{digest}", tag, {}, None, False)
        assert store.claim_next() is not None
        store.finish(digest, to_dict(analysis), metadata=summary(analysis))
        store.add_policy(DENY_ALL["id"], DENY_ALL["name"], DENY_ALL["description"], DENY_ALL, active=True)
        driver = Driver(app)
        created = driver.call("POST", "/v2/user/api-keys", headers=[(b"authorization", _basic("admin", PASSWORD)),
                                                                    (b"content-type", b"application/json")],
                              body=json.dumps({"name": "fuzz"}).encode())
        assert created.status == 200, created.body
        try:
            yield Target(driver, digest, tag, created.json()["value"])
        finally:
            service.stop()
            driver.close()


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# --- strategies ------------------------------------------------------------------------------------

ROUTES = ["/health", "/version", "/status", "/v2/user/api-keys", "/v2/user/api-keys/{x}", "/v1/", "/v2/",
          "/{v}/version", "/{v}/status", "/{v}/images", "/{v}/images/{d}", "/{v}/images/{d}/check",
          "/{v}/images/{d}/vuln", "/{v}/images/{d}/vuln/{x}", "/{v}/images/{d}/content",
          "/{v}/images/{d}/content/{x}", "/{v}/policies", "/{v}/policies/{x}", "/v2/images/{d}/vulnerabilities"]
ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["..", "../..", "%2e%2e%2f", "%00", "\x00", "deny-all", "default", "fuzz", "sha256:",
                     "'; DROP TABLE images; --", "{{7*7}}", "\u202e", "\ud800", "a" * 5000, "%", "%%", "?", "#"]),
)
QUERY_KEYS = ["force", "tag", "policy_id", "policyId", "detail", "active", "full_tag", "fulltag", "analysis_status",
              "type", "image_id", "interactive", "history", "base_digest", "vendor_only"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
PULL_STRINGS = st.one_of(st.sampled_from(["127.0.0.1:1/fuzz/tiny:v1", "127.0.0.1:1/a@sha256:" + "a" * 64, "nginx", ""]),
                         st.text(max_size=60), JSON)
DOCKERFILES = st.one_of(st.none(), st.text(max_size=20), st.just("RlJPTSBzY3JhdGNoCg=="), JSON)
ADD_BODIES = st.builds(
    lambda kind, field, pull, dockerfile, annotations: {"source": {kind: {field: pull, "dockerfile": dockerfile}},
                                                        "annotations": annotations},
    st.sampled_from(["tag", "digest", "archive", "import", "x"]), st.sampled_from(["pull_string", "pullstring", "tag"]),
    PULL_STRINGS, DOCKERFILES, st.one_of(st.none(), JSON))
POLICY_BODIES = st.builds(lambda base, changes: {**base, **changes}, st.just(DENY_ALL),
                          st.dictionaries(st.sampled_from([*DENY_ALL, "x"]), JSON, max_size=3))
BODIES = st.one_of(
    st.just(b""),
    JSON.map(lambda value: json.dumps(value).encode()),
    ADD_BODIES.map(lambda value: json.dumps(value).encode()),
    POLICY_BODIES.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.sampled_from([b"{", b'{"name": "x", "expires_at": "9999-12-31T23:59:59Z"}', b'{"expires_at": 5}',
                     b"\xff\xfe", b'"\\ud800"', b"1e999999", b"-0", b"[" + b"1," * 50_000 + b"1]"]),
)
CONTENT_TYPES = st.sampled_from([None, b"application/json", b"application/json; charset=utf-8", b"text/plain",
                                 b"application/x-yaml", b"multipart/form-data; boundary=x", b"\xff", b""])


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@st.composite
def requests_(draw: st.DrawFn) -> dict[str, Any]:
    template = draw(st.sampled_from(ROUTES))
    digest = draw(st.one_of(st.sampled_from(["{target}"] * 3 + ["sha256:" + "0" * 64]), ODD_TEXT))
    path = (template.replace("{v}", draw(st.sampled_from(["v1", "v2"] * 4 + ["v3", "V2", ""])))
            .replace("{d}", quote(_bytes(digest), safe=draw(st.sampled_from(["", "/:", "%"]))))
            .replace("{x}", quote(_bytes(draw(ODD_TEXT)), safe="")))
    if draw(st.booleans()) and draw(st.booleans()):
        path = draw(st.one_of(st.text(max_size=80).map(lambda t: "/" + t), st.just("//v2//images"),
                              st.just("/v2/images/../policies"), st.just("/v2/%2e%2e/policies")))
    query = draw(st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=8)),
                                    st.one_of(st.sampled_from(["true", "false", "1", "", "{tag}", "deny-all"]),
                                              ODD_TEXT)), max_size=4))
    auth = draw(st.sampled_from(["admin", "admin", "admin", "key", "none", "wrong", "garbage", "huge", "nocolon"]))
    headers: list[tuple[bytes, bytes]] = []
    if auth != "none":
        headers.append((b"authorization", {
            "admin": _basic("admin", PASSWORD), "key": b"{key}", "wrong": _basic("admin", "guess"),
            "garbage": draw(st.binary(max_size=40)), "huge": b"Basic " + b"A" * 100_000,
            "nocolon": b"Basic " + base64.b64encode(b"admin"),
        }[auth]))
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers.append((b"content-type", content_type))
    body = draw(BODIES)
    length = draw(st.sampled_from(["true", "true", "none", "over", "garbage", "negative", "twice"]))
    if length == "true":
        headers.append((b"content-length", str(len(body)).encode()))
    elif length == "over":
        headers.append((b"content-length", str(MAX_BODY_BYTES + 1).encode()))
    elif length == "garbage":
        headers.append((b"content-length", b"12abc"))
    elif length == "negative":
        headers.append((b"content-length", b"-5"))
    elif length == "twice":
        headers += [(b"content-length", b"0"), (b"content-length", str(len(body)).encode())]
    headers += draw(st.lists(st.tuples(st.sampled_from([b"x-anchore-account", b"x-forwarded-for", b"host",
                                                        b"transfer-encoding", b"expect", b"accept"]),
                                       st.binary(max_size=30)), max_size=3))
    return {"method": draw(st.sampled_from(["GET"] * 6 + ["POST"] * 4 + ["PUT", "PUT", "PATCH", "DELETE", "DELETE",
                                                                          "HEAD", "OPTIONS", "TRACE", "get", "BREW"])),
            "path": path, "query": query, "headers": headers, "body": body, "auth": auth,
            "client": f"10.0.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}"}


def _find(value: Any, predicate: Any) -> bool:
    if predicate(value):
        return True
    if isinstance(value, dict):
        return any(_find(item, predicate) for item in value.values())
    if isinstance(value, list):
        return any(_find(item, predicate) for item in value)
    return False


def _passes(value: Any) -> bool:
    return isinstance(value, dict) and (value.get("status") == "pass" or value.get("final_action") in ("go", "warn")
                                        or value.get("policy_action") in ("go", "warn"))


def send(target: Target, request: dict[str, Any]) -> Answer:
    path = request["path"].replace("{target}", target.digest)
    query = urlencode([(_bytes(k), _bytes(v.replace("{tag}", target.tag))) for k, v in request["query"]]).encode()
    headers = [(k, v.replace(b"{key}", _basic("_api_key", target.api_key))) for k, v in request["headers"]]
    return target.driver.call(request["method"], path, query=query, headers=headers, body=request["body"],
                              client=request["client"])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(request=requests_())
def test_no_request_breaks_the_server_or_passes_an_image(target: Target, request: dict[str, Any]) -> None:
    answer = send(target, request)
    event(f"status {answer.status}")
    assert answer.status not in (500, 502, 504) and 200 <= answer.status < 600, (answer.status, answer.body[:300])
    assert PASSWORD.encode() not in answer.body
    if answer.body and "json" in answer.headers.get("content-type", ""):
        document = answer.json()
        assert not _find(document, _passes), answer.body[:500]
        if answer.status >= 400:
            assert {"code", "error_type", "message"} <= set(document) or {"httpcode", "message"} <= set(document)
    public = request["path"] in ("/health", "/version", "/v1/", "/v2/") and request["method"] in ("GET", "HEAD")
    if request["auth"] in ("none", "wrong", "garbage", "huge", "nocolon") and not public:
        assert answer.status >= 300, (request["path"], answer.status)


def test_deeply_nested_bodies_are_400_not_500(target: Target) -> None:
    headers = [(b"authorization", _basic("admin", PASSWORD)), (b"content-type", b"application/json")]
    for path in ("/v2/images", "/v2/policies", "/v1/policies", "/v2/user/api-keys"):
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 3000 + b"1" + b"}" * 3000):
            answer = target.driver.call("POST", path, headers=headers, body=body)
            assert answer.status == 400, (path, answer.status, answer.body[:200])
    nested_policy = {**DENY_ALL, "id": "nested", "description": json.loads("[" * 900 + "]" * 900)}
    answer = target.driver.call("POST", "/v2/policies", headers=headers, body=json.dumps(nested_policy).encode())
    assert answer.status == 400, answer.body[:300]


def test_lone_surrogates_are_400_not_500(target: Target) -> None:
    headers = [(b"authorization", _basic("admin", PASSWORD)), (b"content-type", b"application/json")]
    policy = json.dumps({**DENY_ALL, "id": "surrogate", "name": "\ud800"}).encode()
    key = b'{"name": "k", "description": "\\udfff"}'
    tagged = b'{"source": {"tag": {"pull_string": "127.0.0.1:1/a:v1"}}, "annotations": {"\\ud800": "x"}}'
    for path, body in (("/v2/policies", policy), ("/v1/policies", policy), ("/v2/user/api-keys", key),
                       ("/v2/images", tagged)):
        answer = target.driver.call("POST", path, headers=headers, body=body)
        assert answer.status == 400 and b"lone surrogate" in answer.body, (path, answer.status, answer.body[:200])
    answer = target.driver.call("GET", "/v2/policies/%ED%A0%80", headers=headers)
    assert answer.status == 404 and answer.json()["code"] == 404


# --- over a real socket: what reaches uvicorn's HTTP parser before the application ------------------

@pytest.fixture(scope="module")
def socket_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NO_PROXY", "127.0.0.1")  # the in-process fixture points proxies at a closed port
        with ServeProcess(tmp_path_factory.mktemp("serve-socket-fuzz") / "data", workers=0,
                          extra_args=["--request-timeout", "2"]) as process:
            yield process


HEADER_BYTES = st.one_of(
    st.sampled_from([b"0", b"5", b"chunked", b"100-continue", b"admin", b"gzip, chunked", b"-1",
                     b"18446744073709551616"]),
    st.binary(max_size=60),
    st.sampled_from([b"\r\nX-Injected: 1", b"\n", b" folded\r\n continued", b"\x00", b"a" * 70_000, b"\xff\xfe"]),
)


@settings(max_examples=max(EXAMPLES // 5, 40), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(method=st.sampled_from([b"GET"] * 4 + [b"POST"] * 3 + [b"PUT", b"G\x00T", b"", b"GET GET"]),
       target=st.sampled_from([b"/v2/policies", b"/v2/images", b"/v1/policies", b"/v2/user/api-keys"] * 3 +
                              [b"*", b"http://evil.test/v2/policies", b"/%zz", b"//",
                               b"/v2/policies?" + b"a=" * 2000]) | st.binary(max_size=40),
       version=st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""]),
       headers=st.lists(st.tuples(st.sampled_from([b"Authorization", b"Content-Length", b"Transfer-Encoding",
                                                   b"Host", b"Expect", b"X-Anchore-Account", b""]), HEADER_BYTES),
                        max_size=4),
       body=st.binary(max_size=100), authorised=st.booleans())
def test_raw_requests_never_break_the_http_layer(socket_server: ServeProcess, method: bytes, target: bytes,
                                                  version: bytes, headers: list[tuple[bytes, bytes]], body: bytes,
                                                  authorised: bool) -> None:
    head = method + b" " + target + b" " + version + b"\r\nHost: 127.0.0.1\r\n"
    if authorised:
        head += b"Authorization: " + _basic("admin", PASSWORD) + b"\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
    with connect(socket_server.port, timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        answer = read_answer(sock)
    event(f"status {answer.status}")
    assert answer.status not in (500, 502, 504), answer.body[:300]
    assert PASSWORD.encode() not in answer.body
    if answer.status and 200 <= answer.status < 300:
        assert authorised or target.split(b"?")[0] in (b"/health", b"/version", b"/v1/", b"/v2/")
