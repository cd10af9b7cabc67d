"""Test infrastructure shared by tests/ and bench/: OCI writer, registries, Debian images, syft."""
