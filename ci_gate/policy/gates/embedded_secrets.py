"""embedded_secrets (ci-gate extension): secrets outside the final filesystem's files.

Anchore's secret_scans only reads files of the squashed filesystem. DISA CIDG 2.9/2.18 and CIS 4.10
also forbid secrets in ENV, in the build history (ARG values, RUN lines), in labels, and in files
a later layer deleted (they still ship in the image). Messages carry only redacted previews.
"""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.model import SecretFinding
from ci_gate.policy.gates._common import extension_gate, extension_trigger
from ci_gate.policy.gates.interface import Fired, TriggerInput


def _secrets(call: TriggerInput, where: str) -> Iterator[SecretFinding]:
    for secret in call.context.analysis.secrets:
        if where == "deleted_file":
            if secret.where == "file" and secret.deleted:
                yield secret
        elif secret.where == where:
            yield secret


def _message(secret: SecretFinding, place: str) -> str:
    preview = f": {secret.preview}" if secret.preview else ""
    return f"Secret {secret.rule} found in {place} {secret.path}{preview}"


def _env(call: TriggerInput) -> Iterator[Fired]:
    reported = set()
    for secret in _secrets(call, "env"):
        reported.add(secret.path.removeprefix("ENV:"))
        yield Fired(message=_message(secret, "environment variable"), layer_index=secret.layer_index)
    for variable in call.context.analysis.config.env:
        if variable.redacted and variable.name not in reported:
            yield Fired(
                message=f"Secret-looking environment variable {variable.name} is set in the image config"
            )


def _history(call: TriggerInput) -> Iterator[Fired]:
    for secret in _secrets(call, "history"):
        yield Fired(message=_message(secret, "build history"), layer_index=secret.layer_index)


def _label(call: TriggerInput) -> Iterator[Fired]:
    for secret in _secrets(call, "label"):
        yield Fired(message=_message(secret, "label"))


def _deleted(call: TriggerInput) -> Iterator[Fired]:
    for secret in _secrets(call, "deleted_file"):
        line = f" line {secret.line}" if secret.line else ""
        yield Fired(
            message=f"Secret {secret.rule} found in deleted file {secret.path}{line} (still shipped in "
            f"layer {secret.layer_index})",
            path=secret.path,
            layer_index=secret.layer_index,
        )


GATE = extension_gate(
    "embedded_secrets",
    "ci-gate extension: secrets in ENV, build history, labels and deleted files.",
    extension_trigger("env", "Triggers for a secret in an environment variable of the image config.", _env),
    extension_trigger(
        "history", "Triggers for a secret in the build history (RUN lines, ARG values baked into history).", _history
    ),
    extension_trigger("label", "Triggers for a secret in an image label.", _label),
    extension_trigger(
        "deleted_file",
        "Triggers for a secret in a file that a later layer deleted (it still ships in the image).",
        _deleted,
    ),
)
