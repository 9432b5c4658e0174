"""benchmarks/cuda_check.py runs in its --cpu-smoke mode (the real run needs a CUDA machine)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def cuda_check(load_benchmark):
    return load_benchmark("cuda_check")


def test_cpu_smoke_passes_every_required_check_and_prints_one_json_line(cuda_check, capsys, tmp_path):
    out = tmp_path / "check.json"
    code = cuda_check.main(["--cpu-smoke", "--out", str(out)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert code == 0 and result["passed"] and result["failures"] == [], result["failures"]
    assert json.loads(out.read_text()) == result
    groups = {name.split("_")[0] for name, c in result["checks"].items() if c["required"]}
    assert groups == {"A", "B", "C", "D", "S", "F"}  # G needs two GPUs
    assert all(c["ok"] for c in result["checks"].values() if c["required"])
    assert set(result["info"]["P_precision_drift_vs_fp32"]) == {"bf16", "autocast"}
    assert "semantic_speedup_b1" in result["info"]["T_timing"]


def test_without_cuda_the_real_run_says_so(cuda_check, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert cuda_check.main([]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "no CUDA device"
