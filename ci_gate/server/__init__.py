"""`ci-gate serve`: an Anchore-compatible service (the v2/v1 subset CI clients use) on the embedded engine."""
