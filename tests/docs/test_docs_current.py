"""docs/settings.md is generated; it must list the settings the code has."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_settings_doc_is_current():
    out = subprocess.run([sys.executable, "-m", "mjgate.cli", "settings", "--markdown"], capture_output=True,
                         text=True, check=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")})
    assert (ROOT / "docs" / "settings.md").read_text() == out.stdout, "run: mjgate settings --markdown > docs/settings.md"
