"""ruby_gems: denied Ruby gems (the feed-based triggers need Anchore's retired packages feed)."""

from __future__ import annotations

from ci_gate.policy.gates.interface import GateSpec
from ci_gate.policy.gates.npms import feed_trigger, named_denylist

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
        named_denylist(
            "denylist",
            "Triggers if the evaluated image has a GEM package installed that matches the specified name and "
            "version.",
            "gem",
            "Gem",
            "Gem name to deny.",
            "Optional version to deny specifically.",
        ),
        feed_trigger(
            "feed_data_unavailable",
            "Triggers if anchore does not have access to the GEM data feed.",
        ),
    ),
)
