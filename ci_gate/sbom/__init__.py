"""SBOMs out (CycloneDX JSON, SPDX 2.3 JSON) and in (syft JSON, CycloneDX, SPDX as an image source)."""
