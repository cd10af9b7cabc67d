"""ruby_gems: denied Ruby gems (the feed-based triggers need Anchore's retired packages feed)."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec
from ci_gate.policy.gates.npms import feed_trigger, named_denylist


def _denylist(call: TriggerInput) -> Iterator[Fired]:
    return named_denylist(call, "gem", "Gem")


GATE = GateSpec(
    name="ruby_gems",
    description="Ruby Gem Checks",
    triggers=(
        feed_trigger(
            "newer_version_found_in_feed",
            "Triggers if an installed GEM is not the latest version according to GEM data feed.",
        ),
        feed_trigger(
            "not_found_in_feed",
            "Triggers if an installed GEM is not in the official "
            "GEM database, according to GEM data feed.",
        ),
        feed_trigger(
            "version_not_found_in_feed",
            "Triggers if an installed GEM version is not "
            "listed in the official GEM feed as a valid version.",
        ),
        TriggerSpec(
            name="denylist",
            aliases=("blacklist",),
            description="Triggers if the evaluated image has a GEM package installed that matches the "
            "specified name and version.",
            evaluate=_denylist,
            parameters=(
                ParameterSpec("name", "string", "Gem name to deny.", required=True, example="time_diff"),
                ParameterSpec("version", "string", "Optional version to deny specifically.", example="0.2.9"),
            ),
        ),
        feed_trigger(
            "feed_data_unavailable",
            "Triggers if anchore does not have access to the GEM data feed.",
        ),
    ),
)
