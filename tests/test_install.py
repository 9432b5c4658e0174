"""Installing the node pack can never change the user's torch, torchvision or torchaudio.

ComfyUI users run ``pip install -r requirements.txt`` in ComfyUI's own environment, which holds a
torch built for their GPU. If anything in that file pulls a ``torch*`` package (as ``encodec`` did,
through an unpinned ``torchaudio``), pip picks the newest one, which pins another exact torch, and
either replaces the user's torch or installs a torchaudio that cannot load beside it.

The check runs pip's real resolver (``pip install --dry-run --report``) inside a venv that holds
torch 2.13.0 and no torchaudio, exactly as such a ComfyUI environment does. The venv is built once
(about a minute: the CPU torch wheel) into a folder under the system temp dir and reused by later
runs; a marker file written last says it is complete.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = "2.13.0"
PY = f"py{sys.version_info[0]}{sys.version_info[1]}"
VENV = Path(tempfile.gettempdir()) / "bark-stages-install-check" / f"{PY}-torch{TORCH}"
PIP_TIMEOUT = 600


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(cmd)}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def _installed(python: Path) -> dict[str, str]:
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): d.version " \
           "for d in m.distributions()}))"
    return json.loads(_run([str(python), "-c", code], "listing the venv").stdout)


@pytest.fixture(scope="module")
def torch_venv() -> Path:
    """A venv holding torch 2.13.0 and no torchaudio/torchvision (built once, then reused)."""
    python = _bin(VENV, "python")
    marker = VENV / "bark-stages-ready"
    if not marker.is_file():
        import shutil

        shutil.rmtree(VENV, ignore_errors=True)  # a half-built one from an interrupted run
        VENV.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(VENV)], "creating the venv")
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--only-binary", ":all:",
              f"torch=={TORCH}"], f"installing torch {TORCH}")
        marker.write_text(f"torch {TORCH}\n")
    installed = _installed(python)
    assert installed.get("torch", "").split("+")[0] == TORCH, installed.get("torch")
    assert not {"torchaudio", "torchvision"} & set(installed), "the venv must hold torch alone"
    return VENV


def dry_run(venv: Path, requirements: Path, report: Path) -> list[tuple[str, str]]:
    """(name, version) of every distribution pip would install for ``requirements`` in ``venv``."""
    _run([str(_bin(venv, "python")), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--dry-run",
          "--report", str(report), "-r", str(requirements)], f"resolving {requirements.name}")
    data = json.loads(report.read_text())
    return [(item["metadata"]["name"], item["metadata"]["version"]) for item in data["install"]]


def _torchy(items: list[tuple[str, str]]) -> list[str]:
    return [f"{n}=={v}" for n, v in items if re.sub(r"[-_.]+", "-", n.lower()).startswith("torch")]


def test_requirements_install_nothing_named_torch(torch_venv: Path, tmp_path: Path) -> None:
    items = dry_run(torch_venv, ROOT / "requirements.txt", tmp_path / "report.json")
    names = {n.lower() for n, _ in items}
    assert {"scipy", "matplotlib", "safetensors"} <= names, f"pip resolved too little: {sorted(names)}"
    assert not _torchy(items), f"installing requirements.txt would install {_torchy(items)} beside torch {TORCH}"


def test_the_check_catches_a_dependency_that_pulls_torchaudio(torch_venv: Path, tmp_path: Path) -> None:
    """The old requirement (Meta's encodec, whose metadata asks for torchaudio) fails the same check."""
    old = tmp_path / "old-requirements.txt"
    old.write_text("encodec>=0.1.1\n")
    assert any(t.startswith("torchaudio==") for t in _torchy(dry_run(torch_venv, old, tmp_path / "old.json")))


def _pyproject_dependencies() -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_requirements_mirror_the_runtime_dependencies_without_torch() -> None:
    listed = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    runtime = [dep for dep in _pyproject_dependencies() if not dep.startswith("torch")]
    assert listed == runtime
    assert not [dep for dep in listed if dep.lower().startswith(("torch", "encodec"))]
