"""image_user (ci-gate extension): the image must not run as root, however root is spelled.

Reads the image config's User (so it works without any Dockerfile) and resolves names through
the image's /etc/passwd: `""`, `root`, `0`, `0:0`, `root:root` and a user whose uid is 0 are root.
DISA CIDG 2.2 / CIS 4.1.
"""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import (
    dockerfile_line,
    extension_gate,
    extension_trigger,
    instructions,
    is_root_user,
)
from ci_gate.policy.gates.interface import Fired, TriggerInput


def _runs_as_root(call: TriggerInput) -> Iterator[Fired]:
    analysis = call.context.analysis
    user = analysis.config.user.strip()
    if not is_root_user(analysis, user):
        return
    users = instructions(call.context, "USER")
    line = dockerfile_line(call.context, users[-1]) if users else None
    if not user:
        message = "Image runs as root: the image config sets no User"
    else:
        message = f"Image runs as root: the image config User is '{user}'"
    yield Fired(message=message, dockerfile_line=line)


GATE = extension_gate(
    "image_user",
    "ci-gate extension: the user the image runs as, from the image config, resolved through /etc/passwd.",
    extension_trigger(
        "runs_as_root",
        "Triggers if the image runs as root: User empty, root, 0, 0:0, root:root, or a name whose /etc/passwd "
        "uid is 0.",
        _runs_as_root,
    ),
)
