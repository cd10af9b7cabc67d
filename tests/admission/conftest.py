"""Fixtures for the admission tests: a trustme CA, images in the local registry, serve over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
import yaml

from tests.admission.support import TlsServeProcess, admission_policy, build_image
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import build_vuln_db


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    """The test CA's certificate (what a caBundle holds)."""
    cert: Path
    """serve's certificate chain for 127.0.0.1."""
    key: Path
    """Its private key."""


@dataclass(frozen=True)
class Images:
    compliant: str
    """Full tag of an image the test policy passes (with WARN findings)."""
    compliant_digest: str
    secrets: str
    """Full tag of an image with an AWS key in /app/.env."""
    secrets_digest: str


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "ci-gate.ci-gate.svc")
    files = TlsFiles(directory / "ca.pem", directory / "tls.crt", directory / "tls.key")
    authority.cert_pem.write_to_path(str(files.ca))
    certificate.private_key_pem.write_to_path(str(files.key))
    certificate.cert_chain_pems[0].write_to_path(str(files.cert))
    for blob in certificate.cert_chain_pems[1:]:
        blob.write_to_path(str(files.cert), append=True)
    return files


@pytest.fixture(scope="session")
def admission_images(tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer) -> Images:
    root = tmp_path_factory.mktemp("admission-images")
    compliant = build_image(root / "compliant", "compliant")
    secrets = build_image(root / "secrets", "secrets", secret=True)
    return Images(push(compliant, registry.host, "admission/compliant:v1"), compliant.manifest_digest,
                  push(secrets, registry.host, "admission/secrets:v1"), secrets.manifest_digest)


ADMISSION_CONFIG = {
    "defaultMode": "policy",
    "defaultPolicyId": "admission-test",
    "requestAnalysis": True,
    "tagCacheSeconds": 0,
    "policySelectors": [
        {"selector": {"resourceType": "namespace", "selectorKeyRegex": "^ci-gate.dev/admission$",
                      "selectorValueRegex": "^breakglass$"}, "mode": "breakglass"},
        {"selector": {"resourceType": "namespace", "selectorKeyRegex": "^name$", "selectorValueRegex": "^scan-only$"},
         "mode": "analysis"},
        {"selector": {"resourceType": "resource", "selectorKeyRegex": "^tier$", "selectorValueRegex": "^strict$"},
         "mode": "policy", "policyReference": {"policyId": "ci-gate-default"}},
    ],
    "allowlist": {"registries": ["registry.k8s.io"]},
    "namespaceLabels": {"emergency": {"ci-gate.dev/admission": "breakglass"}},
}


@pytest.fixture(scope="module")
def admission_server(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles,
                     admission_images: Images) -> Iterator[TlsServeProcess]:
    """serve over HTTPS with the admission config, the test policy, and both images analysed."""
    directory = tmp_path_factory.mktemp("admission-serve")
    config = directory / "admission.yaml"
    config.write_text(yaml.safe_dump(ADMISSION_CONFIG))
    vuln_db = build_vuln_db(directory / "vulns")
    process = TlsServeProcess(directory / "data", tls_files.ca, tls_files.cert, tls_files.key, config, vuln_db)
    with process:
        default = process.get("/v2/policies/ci-gate-default").json()["policy"]
        added = process.post("/v2/policies", json=admission_policy(default))
        assert added.status_code == 200, added.text
        for tag in (admission_images.compliant, admission_images.secrets):
            response = process.add_tag(tag)
            assert response.status_code == 200, response.text
            assert process.wait_status(response.json()["image_digest"])["analysis_status"] == "analyzed"
        yield process
