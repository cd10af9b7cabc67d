"""npms: denied NPM packages (the feed-based triggers need Anchore's retired packages feed)."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import name_version_denylist
from ci_gate.policy.gates.interface import Fired, GateSpec, TriggerInput, TriggerSpec


def _versions(call: TriggerInput, package_type: str) -> dict[str, list[str]]:
    def build() -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for package in call.context.analysis.packages:
            if package.type == package_type:
                index.setdefault(package.name, []).append(package.version)
        return index

    return call.context.memo(f"packages.{package_type}.versions", build)


def named_denylist(name: str, description: str, package_type: str, label: str, name_help: str,
                   version_help: str) -> TriggerSpec:
    """anchore-engine's npm/gem denylist: one fire per rule, for the name or the name and version."""

    def evaluate(call: TriggerInput) -> Iterator[Fired]:
        packages = _versions(call, package_type)
        name = call.params["name"]
        version = call.params.get("version")
        if name in packages:
            if version and version in packages[name]:
                yield Fired(message=f"{label} Package is blacklisted: {name}-{version}")
            elif version is None:
                yield Fired(message=f"{label} Package is blacklisted: {name}")

    return name_version_denylist(name, description, evaluate, name_help, "time_diff", version_help, "0.2.9")


def no_feed(call: TriggerInput) -> Iterator[Fired]:
    """Feed-based triggers: ci-gate has no Anchore packages feed; the engine notes they did not run."""
    return iter(())


def feed_trigger(name: str, description: str) -> TriggerSpec:
    """A trigger on Anchore's packages feed: declared as Anchore does, it never fires here (no feed)."""
    return TriggerSpec(name=name, description=description, evaluate=no_feed, needs_feed=True)


GATE = GateSpec(
    name="npms",
    description="NPM Checks",
    triggers=(
        feed_trigger(
            "newer_version_in_feed",
            "Triggers if an installed NPM is not the latest version according to NPM data feed.",
        ),
        feed_trigger(
            "unknown_in_feeds",
            "Triggers if an installed NPM is not in the official "
            "NPM database, according to NPM data feed.",
        ),
        feed_trigger(
            "version_not_in_feeds",
            "Triggers if an installed NPM version is not "
            "listed in the official NPM feed as a valid version.",
        ),
        named_denylist(
            "denylisted_name_version",
            "Triggers if the evaluated image has an NPM package installed that matches the name and optionally a "
            "version specified in the parameters.",
            "npm",
            "NPM",
            "Npm package name to deny.",
            "Npm package version to deny specifically.",
        ),
        feed_trigger(
            "feed_data_unavailable",
            "Triggers if the engine does not have access to the NPM data feed.",
        ),
    ),
)
