"""secret_scans: secrets the analysis found in image files (Anchore's secret_search regexes).

Only files of the final filesystem count here, as in anchore-engine. Secrets in ENV, history,
labels and deleted files are reported by the ci-gate extension gate `embedded_secrets`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec

DEFAULT_REGEX_NAMES = ("AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PRIV_KEY", "DOCKER_AUTH", "API_KEY")


def _checks(call: TriggerInput) -> Iterator[Fired]:
    wanted = call.params.get("content_regex_name")
    name_filter = call.params.get("filename_regex")
    name_pattern = re.compile(name_filter) if name_filter else None
    match_type = call.params.get("match_type", "found")
    one_found = False
    seen: set[tuple[str, str]] = set()
    for secret in call.context.analysis.secrets:
        if secret.where != "file" or secret.deleted:
            continue
        path = secret.path if secret.path.startswith("/") else "/" + secret.path
        if name_pattern and not name_pattern.match(path):
            continue
        decoded = secret.regex or secret.rule
        name, _, regex = decoded.partition("=")
        # anchore-engine tests `regex in param` / `name in param` on the raw string (substring test).
        if wanted and not (regex in wanted or (name and name in wanted)):
            continue
        one_found = True
        if match_type == "found" and (path, decoded) not in seen:
            seen.add((path, decoded))
            yield Fired(
                message=f"Secret content search analyzer found regexp match in container: file={path} "
                f"regexp={decoded}",
                path=path,
                layer_index=secret.layer_index,
            )
    if not one_found and match_type == "notfound":
        yield Fired(
            message="Secret content search analyzer did not find regexp match in container: "
            f"filename_regex={name_filter or '*'} content_regex_name={wanted or 'all'}"
        )


GATE = GateSpec(
    name="secret_scans",
    description="Checks for secrets and content found in the image using configured regexes found in the "
    '"secret_search" section of the analyzer configuration.',
    triggers=(
        TriggerSpec(
            name="content_regex_checks",
            description="Triggers if the secret content search analyzer has found any matches with the "
            "configured and named regexes. Checks can be configured to trigger if a match is found or is not "
            "found (selected using match_type parameter). Matches are filtered by the content_regex_name and "
            "filename_regex if they are set.",
            evaluate=_checks,
            parameters=(
                ParameterSpec(
                    "content_regex_name",
                    "string",
                    "Name of content regexps configured in the "
                    "analyzer that match if found in the image, instead of matching all. Names "
                    f"available by default are: {list(DEFAULT_REGEX_NAMES)}.",
                    example="AWS_ACCESS_KEY",
                ),
                ParameterSpec(
                    "filename_regex",
                    "string",
                    "Regexp to filter the content matched files by.",
                    example="/etc/.*",
                    is_regex=True,
                ),
                ParameterSpec(
                    "match_type",
                    "EnumString",
                    "Set to define the type of match - trigger if match is found (default) or not found.",
                    allowed_values=("notfound", "found"),
                    example="found",
                    default="found",
                ),
            ),
        ),
    ),
)
