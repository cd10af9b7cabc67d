"""The gates: one module per gate, each exposing `GATE: GateSpec` (see interface.py)."""
