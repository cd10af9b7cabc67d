"""A secret finding in a report describes the secret it is about, also when a file holds several."""

from __future__ import annotations

from ci_gate.model import Analysis, Finding, ImageIdentity, SecretFinding
from ci_gate.reports.common import secret_summary

ACCESS = SecretFinding("AWS_ACCESS_KEY", "file", "/root/.aws/credentials", 2, 1, "aws_access_key_id = AKIA****",
                       regex="AWS_ACCESS_KEY=(?i).*aws_access_key_id( *=+ *).*")
SECRET = SecretFinding("AWS_SECRET_KEY", "file", "/root/.aws/credentials", 3, 1, "aws_secret_access_key = wJal****",
                       regex="AWS_SECRET_KEY=(?i).*aws_secret_access_key( *=+ *).*")


def finding_for(secret: SecretFinding) -> Finding:
    message = ("Secret content search analyzer found regexp match in container: "
               f"file={secret.path} regexp={secret.regex}")
    return Finding("secret_scans", "content_regex_checks", "id", "STOP", message, path=secret.path)


def test_each_finding_names_its_own_secret() -> None:
    analysis = Analysis(identity=ImageIdentity("oci-dir:x", "oci-dir", None, None), secrets=(ACCESS, SECRET))
    assert "AWS_ACCESS_KEY" in secret_summary(analysis, finding_for(ACCESS))
    assert ":2" in secret_summary(analysis, finding_for(ACCESS))
    summary = secret_summary(analysis, finding_for(SECRET))
    assert "AWS_SECRET_KEY" in summary and ":3" in summary
