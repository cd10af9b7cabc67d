"""Built-in policy packs (Anchore v2 documents), addressed as builtin:NAME."""
