"""The speed benchmark runs end to end at a tiny size (a smoke test; real timings come from benchmarks/)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def speed(load_benchmark):
    return load_benchmark("speed")


def test_speed_benchmark_times_ours_and_both_references_on_the_same_weights(speed, tmp_path, capsys, suno,
                                                                               monkeypatch):
    pytest.importorskip("transformers")
    # the benchmark points Suno's globals at its own weights and vocab; give them back afterwards
    monkeypatch.setattr(suno, "models", {})
    monkeypatch.setattr(suno.BertTokenizer, "from_pretrained", suno.BertTokenizer.from_pretrained)
    out = tmp_path / "rows.json"
    rows = speed.main(["--size", "tiny", "--device", "cpu", "--tokens", "12", "--warmup-tokens", "4",
                       "--batch", "1", "2", "--impl", "ours-fast", "ours-eager@fp32", "suno", "transformers",
                       "--weights", str(tmp_path / "w"), "--out", str(out)])
    by = {(r["impl"], r["batch"]): r for r in rows}
    assert set(by) == {(i, b) for i in ("ours-fast", "ours-eager@fp32", "suno", "transformers") for b in (1, 2)}
    for (impl, batch), r in by.items():
        assert "error" not in r, r
        # 12 semantic tokens at 49.9 Hz -> 18 coarse frames at 75 Hz -> 5,760 samples per text
        assert r["audio_s"] == pytest.approx(batch * 18 * 320 / 24_000), (impl, batch)
        assert r["total_s"] > 0 and r["rtf"] > 0
    assert by[("suno", 1)]["coarse_s"] > 0 and by[("transformers", 1)]["fine_s"] > 0
    table = capsys.readouterr().out
    assert "| ours-fast | 1 |" in table and "× Suno" in table
    saved = json.loads(out.read_text())
    assert saved["info"]["size"] == "tiny" and len(saved["rows"]) == 8
    # the three implementations really share the weights: Suno's files are our conversion of the HF folder
    assert (tmp_path / "w" / "hf" / "config.json").is_file() and (tmp_path / "w" / "suno" / "coarse.pt").is_file()


def test_speed_benchmark_rejects_an_unknown_implementation(speed):
    with pytest.raises(SystemExit):
        speed.main(["--impl", "ours-turbo"])
