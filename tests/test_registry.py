"""Ready for the Comfy registry: the pyproject.toml fields its specification asks for, the files they name,
and the registry's own checker (``comfy node validate`` from comfy-cli, which works offline).

comfy-cli is a large tool with its own pinned dependencies, so it lives in its own venv: ``.ci/run``
builds one and points ``COMFY_CLI`` at its ``comfy`` executable (a ``comfy`` on the PATH works too).
Its validation is lenient (it checks that the file parses and runs ruff's security rules), so the
field checks below are the real guard; we also read the file through comfy-cli's own parser and
check what the registry would extract.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
COMFY = PYPROJECT["tool"]["comfy"]
# the values the registry accepts (comfy-cli's config parser drops every classifier of a prefix otherwise)
OS_PREFIXES = ("Microsoft", "POSIX", "MacOS", "OS Independent")
ACCELERATORS = {"GPU :: NVIDIA CUDA", "GPU :: AMD ROCm", "GPU :: Intel Arc", "NPU :: Huawei Ascend",
                "GPU :: Apple Metal"}


def _classifiers(prefix: str) -> list[str]:
    return [c[len(prefix):] for c in PROJECT.get("classifiers", []) if c.startswith(prefix)]


def test_project_fields_follow_the_registry_spec() -> None:
    name = PROJECT["name"]
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name), name
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"]), PROJECT["version"]
    assert PROJECT["description"] and PROJECT["requires-python"]
    repo = urlparse(PROJECT["urls"]["Repository"])  # required by the registry
    assert repo.scheme == "https" and repo.netloc and repo.path.strip("/").count("/") == 1, repo


def test_license_file_is_the_mit_license_pyproject_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    declared = PROJECT["license"]
    declared = declared if isinstance(declared, str) else declared.get("text") or declared.get("file")
    assert declared in ("MIT", "LICENSE"), declared


def test_os_and_accelerator_classifiers_are_ones_the_registry_reads() -> None:
    systems = _classifiers("Operating System :: ")
    accelerators = _classifiers("Environment :: ")
    assert systems and all(s.startswith(OS_PREFIXES) for s in systems), systems
    assert accelerators and set(accelerators) <= ACCELERATORS, accelerators


def test_tool_comfy_section() -> None:
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", COMFY["PublisherId"]), COMFY["PublisherId"]
    assert COMFY["DisplayName"]
    assert re.fullmatch(r"[<>=!~]=?\s*\d+(\.\d+)*", COMFY["requires-comfyui"]), COMFY["requires-comfyui"]
    assert isinstance(COMFY.get("includes"), list)
    for folder in COMFY["includes"]:
        assert (ROOT / folder).is_dir(), f"includes names a missing folder {folder}"
    assert "web" not in COMFY, "the root __init__.py sets WEB_DIRECTORY; the registry's 'web' must not also"


def test_icon_url_points_at_the_icon_in_this_repository() -> None:
    """A square PNG of at most 400 px, served from the Repository's raw files (the registry shows it)."""
    icon = urlparse(COMFY["Icon"])
    repo = urlparse(PROJECT["urls"]["Repository"]).path.strip("/")
    assert icon.scheme == "https" and icon.netloc == "raw.githubusercontent.com", COMFY["Icon"]
    owner, name, _branch, path = icon.path.strip("/").split("/", 3)
    assert f"{owner}/{name}" == repo
    data = (ROOT / path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == height <= 400 and len(data) < 200_000


def test_the_published_archive_leaves_out_development_files() -> None:
    ignored = [line.strip() for line in (ROOT / ".comfyignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert {"tests/", "benchmarks/"} <= set(ignored)
    for needed in ("__init__.py", "bark_core/", "bark_nodes/", "requirements.txt", "LICENSE", "example_workflows/"):
        assert not any(needed.startswith(pattern) for pattern in ignored), needed


def _comfy_cli() -> Path:
    found = os.environ.get("COMFY_CLI") or shutil.which("comfy")
    if not found or not Path(found).is_file():
        pytest.skip("comfy-cli not installed (.ci/run installs it in its own venv and sets COMFY_CLI)")
    return Path(found)


def test_comfy_node_validate_passes_offline(tmp_path: Path) -> None:
    comfy = _comfy_cli()
    # validate what the registry publishes: the tracked files less .comfyignore, not the venvs CI builds in the
    # checkout (their site-packages are full of exec)
    ignored = [line.strip() for line in (ROOT / ".comfyignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if not any(name.startswith(prefix) for prefix in ignored) and (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    proc = subprocess.run([str(comfy), "--skip-prompt", "--no-enable-telemetry", "node", "validate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr  # rich prints its verdict on stderr
    assert proc.returncode == 0, out
    assert "All validation checks passed" in out and "Security warnings" not in out, out


def test_the_registry_parser_extracts_every_field() -> None:
    """What comfy-cli's own parser (the one publishing uses) reads from our pyproject.toml."""
    python = _comfy_cli().parent / "python"
    code = (
        "import json\n"
        "from comfy_cli.registry.config_parser import extract_node_configuration as x\n"
        "c = x('pyproject.toml'); p, t = c.project, c.tool_comfy\n"
        "print(json.dumps({'name': str(p.name), 'version': str(p.version), 'repository': str(p.urls.repository),\n"
        "  'license': [str(p.license.file), str(p.license.text)], 'os': [str(s) for s in p.supported_os],\n"
        "  'accelerators': [str(a) for a in p.supported_accelerators], 'comfyui': str(p.supported_comfyui_version),\n"
        "  'publisher': str(t.publisher_id), 'icon': str(t.icon), 'includes': [str(i) for i in t.includes],\n"
        "  'dependencies': [str(d) for d in p.dependencies]}))\n"
    )
    proc = subprocess.run([str(python), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["name"] == PROJECT["name"] and got["version"] == PROJECT["version"]
    assert got["repository"] == PROJECT["urls"]["Repository"] and got["icon"] == COMFY["Icon"]
    assert got["os"] == ["OS Independent"] and got["accelerators"] == ["GPU :: NVIDIA CUDA"]
    assert got["publisher"] == COMFY["PublisherId"] and got["comfyui"] == COMFY["requires-comfyui"]
    assert got["license"][1] == "MIT" and got["includes"] == []
