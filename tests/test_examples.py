"""The example scripts run offline on the tiny set and write labelled audio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bark_core.label.metadata import read_label

SCRIPTS = Path(__file__).resolve().parents[1] / "examples" / "scripts"


@pytest.mark.parametrize("script, outputs", [
    ("stagewise.py", ["out/take_coarse_0.7.wav", "out/take_coarse_0.9.wav"]),
    ("long_form.py", ["out.wav"]),
    ("batch.py", ["out/line1.wav", "out/line3.wav"]),
])
def test_example_script_runs_offline(tiny_dir, tmp_path, script, outputs):
    out = "out.wav" if script == "long_form.py" else "out"
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), "--models", str(tiny_dir), "--max-seconds", "0.5",
                           "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in outputs:
        assert read_label(tmp_path / name)["AI_GENERATED"] is True
    if script == "stagewise.py":
        lines = proc.stdout.splitlines()
        assert "'semantic': True, 'coarse': False" in lines[2]  # second pass: only coarse onwards recomputed
