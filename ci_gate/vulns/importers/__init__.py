"""Importers: turn published vulnerability data into store records (OSV today)."""
