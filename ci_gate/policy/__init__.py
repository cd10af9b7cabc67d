"""Policy-as-code: Anchore v2 policies and v1 bundles, gates, evaluation, built-in packs."""
