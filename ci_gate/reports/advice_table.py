"""The advice table: one general sentence per trigger of every gate, as data.

SARIF rule help, `policy gates` and every report fall back to it when a rule has no
`recommendation` of its own and ci-gate knows nothing more concrete (ci_gate.reports.advice); a
test checks that no trigger lacks one.
"""

from __future__ import annotations

from dataclasses import dataclass

FIXING_GUIDE = "docs/fixing-findings.md"
"""The developer's guide every comment links to (a path in the ci-gate repository)."""
FIXING_GUIDE_URL = "https://github.com/ci-gate/ci-gate/blob/main/docs/fixing-findings.md"

NON_ROOT_USER = "10001:10001"
"""The user the advice suggests: a high uid no distribution assigns, as Iron Bank and Chainguard use."""



@dataclass(frozen=True)
class _PackageFeedGate:
    """A gate on Anchore's package feeds (npms, ruby_gems): five triggers, the same advice in its words."""

    gate: str
    triggers: tuple[str, str, str, str, str]
    """newer version in the feed, unknown to the feed, version not in the feed, denylisted, no feed data."""
    package: str
    """What a package is called: `npm package`, `gem`."""
    upgrade: str
    official: str
    """Where a real one comes from."""
    published: str
    manifest: str
    feed: str

    def advice(self) -> dict[tuple[str, str], str]:
        newer, unknown, version, denied, no_feed = self.triggers
        return {
            (self.gate, newer): f"Upgrade the {self.package} to its latest version ({self.upgrade}).",
            (self.gate, unknown): f"Replace the {self.package} with one {self.official}.",
            (self.gate, version): f"Install a published version of the {self.package}{self.published}.",
            (self.gate, denied): f"Remove the denied {self.package} from {self.manifest} and rebuild.",
            (self.gate, no_feed): f"This rule needs Anchore's {self.feed} feed: evaluate with `--backend anchore` "
            "or drop the rule.",
        }


_PACKAGE_FEED_GATES = (
    _PackageFeedGate("npms", ("newer_version_in_feed", "unknown_in_feeds", "version_not_in_feeds",
                              "denylisted_name_version", "feed_data_unavailable"),
                     "npm package", "npm install NAME@latest", "from the official npm registry",
                     " from the official registry", "package.json", "npm"),
    _PackageFeedGate("ruby_gems", ("newer_version_found_in_feed", "not_found_in_feed", "version_not_found_in_feed",
                                   "denylist", "feed_data_unavailable"),
                     "gem", "bundle update NAME", "published on rubygems.org", "", "the Gemfile", "gem"),
)

RULE_ADVICE: dict[tuple[str, str], str] = {
    **{key: text for gate in _PACKAGE_FEED_GATES for key, text in gate.advice().items()},
    ("always", "always"): "This rule fires for every image it maps to (a deliberate block): ask the policy owner "
    "whether the image may be allowed, then remove the rule or change the mapping.",
    ("dockerfile", "instruction"): "Change the Dockerfile instruction the rule names so it meets the rule's "
    "condition (add the missing instruction, or rewrite or remove the one that matched).",
    ("dockerfile", "effective_user"): f"Add `USER {NON_ROOT_USER}` after the last RUN of the Dockerfile (create the "
    "user first if the service needs a named one).",
    ("dockerfile", "exposed_ports"): "Remove the port from the EXPOSE line of the Dockerfile; the service must not "
    "listen on it.",
    ("dockerfile", "no_dockerfile_provided"): "Give ci-gate the Dockerfile the image was built from: "
    "`--dockerfile PATH`.",
    ("files", "content_regex_match"): "Remove or rewrite the matching content in the file, in the build step "
    "that adds it.",
    ("files", "name_match"): "Keep the file out of the image: add it to .dockerignore or delete it in the same "
    "RUN that creates it.",
    ("files", "attribute_match"): "Make the file's mode or checksum match what the rule expects, in the build step "
    "that adds it.",
    ("files", "suid_or_guid_set"): "Remove the setuid/setgid bit: `RUN chmod a-s PATH` in the Dockerfile (or "
    "`find / -xdev -perm /6000 -type f -exec chmod a-s {} +`), or remove the file.",
    ("licenses", "denylist_exact_match"): "Remove the package distributed under the denied license, or replace it "
    "with one under an allowed license.",
    ("licenses", "denylist_partial_match"): "Remove the package distributed under the denied license, or replace "
    "it with one under an allowed license.",
    ("malware", "scans"): "Remove the file the malware scanner matched, find how it got into the build (a "
    "dependency, a download), and rebuild from clean sources.",
    ("malware", "scan_not_run"): "ci-gate runs no malware scanner: evaluate with `--backend anchore` where one "
    "runs, or drop the rule.",
    ("stig", "rule_failed"): "Apply the rule's fix text from the SCAP content (shown with the finding, and in the "
    ".ckl written by `ci-gate stig --ckl`) in the Dockerfile, rebuild, and run `ci-gate stig` again; a rule that "
    "cannot apply to a container is allowlisted with its reason for the assessor.",
    ("stig", "not_evaluated"): "Run `ci-gate stig IMAGE` in the pipeline before the gate (it records the result "
    "for the image digest), or give the profile that matches the image's distribution with `--profile`.",
    ("metadata", "attribute"): "Change the image metadata the rule checks (size, architecture, OS, layer count…) "
    "so it meets the rule's condition.",
    ("packages", "required_package"): "Install the required package (at the required version) in the Dockerfile.",
    ("packages", "verify"): "Reinstall the package instead of editing or deleting its files, so the files match "
    "the package database.",
    ("packages", "denylist"): "Remove the package: do not install it, or `apt-get purge` / `apk del` it in the RUN "
    "that installs it; use a multi-stage build to keep build tools out of the runtime image.",
    ("passwd_file", "content_not_available"): "The image has no /etc/passwd: add one with the service's user "
    "(uid 10001) so the user can be checked.",
    ("passwd_file", "denylist_usernames"): "Remove the user from the image (`RUN userdel NAME`) or do not create it.",
    ("passwd_file", "denylist_userids"): "Remove the user with that uid, or give the account another uid.",
    ("passwd_file", "denylist_groupids"): "Remove the account with that gid, or give it another group.",
    ("passwd_file", "denylist_shells"): "Give the account a non-login shell: `RUN usermod -s /usr/sbin/nologin NAME`.",
    ("passwd_file", "denylist_full_entry"): "Remove or change the /etc/passwd entry the rule denies.",
    ("retrieved_files", "content_not_available"): "Add the file the rule expects to the image, or drop the rule.",
    ("retrieved_files", "content_regex"): "Change the file's content so it meets the rule's condition.",
    ("secret_scans", "content_regex_checks"): "Remove the credential in the layer that added it (deleting it in a "
    "later layer leaves it in the image), then rotate it: anyone who can pull the image has it. Pass secrets at "
    "run time, or at build time with `RUN --mount=type=secret`.",
    ("vulnerabilities", "package"): "Upgrade the package to the fixed version, or rebuild on a base image that has "
    "it; with no fix yet, remove the package or record a justified exception.",
    ("vulnerabilities", "stale_feed_data"): "Refresh the vulnerability data before gating: `ci-gate db update` "
    "(or `ci-gate db import` newer OSV exports).",
    ("vulnerabilities", "vulnerability_data_unavailable"): "Give ci-gate vulnerability data for the image's "
    "distribution: `--vuln-db PATH` (made by `ci-gate db import` or `ci-gate db update`).",
    ("vulnerabilities", "denylist"): "Upgrade the affected package to a version without the denied vulnerability.",
    ("distro", "deny"): "Rebuild on a supported release of the distribution (a newer base image).",
    ("ancestry", "allowed_base_image_digest"): "Build FROM an approved base image pinned by one of the allowed "
    "digests (`FROM name:tag@sha256:…`).",
    ("ancestry", "allowed_base_image_tag"): "Build FROM an approved base image (one matching the allowed tags, "
    "e.g. registry1.dso.mil/ironbank/…).",
    ("ancestry", "denylist_ancestor_image_digest"): "Move off the denied base image: build FROM another base.",
    ("ancestry", "denylist_ancestor_image_tag"): "Move off the denied base image: build FROM another base.",
    ("ancestry", "no_ancestors_analyzed"): "Tell ci-gate the base image: `--base-image REF` or `--dockerfile PATH`.",
    ("image_user", "runs_as_root"): f"Add `USER {NON_ROOT_USER}` after the last RUN of the Dockerfile (create the "
    "user first if the service needs a named one).",
    ("network_ports", "privileged_ports"): "Make the service listen on an unprivileged port (1024 or above, e.g. "
    "8080 instead of 80), EXPOSE that, and map it at deploy time.",
    ("healthcheck", "missing"): "Add `HEALTHCHECK CMD [\"/app/healthcheck\"]` before CMD (it exits 0 when healthy).",
    ("image_labels", "required"): "Add the missing labels to the Dockerfile: `LABEL NAME=\"value\"`.",
    ("ssh_daemon", "present"): "Do not ship an SSH server: remove the package (or do not install it) and do not "
    "EXPOSE 22; use `docker exec` / `kubectl exec` to get a shell.",
    ("build_instructions", "add_remote_url"): "Download the file in a pre-build step, verify its checksum, and "
    "COPY it into the image instead of ADD URL.",
    ("build_instructions", "pipe_to_shell"): "Download the script, verify its checksum or signature, then run it; "
    "never pipe curl or wget into a shell.",
    ("build_instructions", "remote_fetch"): "Fetch dependencies before the build (with checksums) and COPY them "
    "in, so the build runs offline.",
    ("build_instructions", "update_alone"): "Update and install in one RUN: `RUN apt-get update && apt-get install "
    "-y --no-install-recommends PKG && rm -rf /var/lib/apt/lists/*`.",
    ("build_instructions", "sudo"): "Drop sudo: RUN steps already run as the current USER; switch USER around the "
    "steps that need root.",
    ("build_instructions", "add_instead_of_copy"): "Use COPY instead of ADD for local files.",
    ("embedded_secrets", "env"): "Remove the secret from ENV (it is stored in the image config), rotate it, and "
    "pass it at run time from a secret store instead.",
    ("embedded_secrets", "history"): "Remove the secret from the RUN/ARG line (build history keeps it), rotate it, "
    "and use `RUN --mount=type=secret` at build time.",
    ("embedded_secrets", "label"): "Remove the secret from the LABEL, rotate it; labels are readable by anyone who "
    "can pull the image.",
    ("embedded_secrets", "deleted_file"): "Remove the file in the layer that added it, not in a later one (the "
    "deleted file still ships in the image), then rotate the credential.",
    ("volumes", "sensitive_path"): "Remove the VOLUME on the system path; mount what the service needs at deploy "
    "time, never system directories or the container runtime socket.",
    ("accounts", "duplicate_uids"): "Give every account its own uid.",
    ("accounts", "empty_password"): "Lock the account: `RUN passwd -l NAME` (or remove it).",
}
"""The general advice for every trigger of every gate, by (gate, trigger)."""

_GENERIC = "Change the image (or its Dockerfile) so the rule no longer fires, or record a justified exception."


def rule_advice(gate: str, trigger: str, own: str = "") -> str:
    """The rule's own recommendation, else the general advice for its gate and trigger."""
    return own.strip() or RULE_ADVICE.get((gate.lower(), trigger.lower()), _GENERIC)
