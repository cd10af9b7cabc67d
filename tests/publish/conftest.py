"""Make the shared sample evaluations and tool locations (tests/reports/) importable here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
