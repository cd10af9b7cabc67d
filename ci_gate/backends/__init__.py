"""Backends: produce an Evaluation for an image (local: in-process; anchore: a server)."""
