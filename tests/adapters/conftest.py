"""Make the shared sample evaluations, tool locations (tests/reports/) and API stand-ins
(tests/publish/) importable here."""

import sys
from pathlib import Path

for folder in ("reports", "publish"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / folder))
