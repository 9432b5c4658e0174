"""The stage cache: recompute only what changed, never serve damaged entries, show hits and misses."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bark_core import BarkModels, decode, generate_coarse, generate_fine, generate_semantic
from bark_core.artifacts import Provenance, SemanticTokens
from bark_core.cache import StageCache
from bark_core.cli import main

SEM = dict(allow_early_stop=False, max_gen_duration_s=0.6)


def _chain(models, coarse_temp=0.7, seed=1):
    sem = generate_semantic(models, "Cache me if you can.", seed=seed, **SEM)
    coarse = generate_coarse(models, sem, seed=seed, temp=coarse_temp)
    fine = generate_fine(models, coarse, seed=seed)
    return sem, coarse, fine, decode(models, fine)


def test_changing_coarse_temp_reruns_only_coarse_and_after(tiny_dir, tmp_path):
    cache = StageCache(tmp_path / "c")
    models = BarkModels(tiny_dir, device="cpu", cache=cache)
    first = _chain(models)
    assert [a.cache_hit for a in first] == [False] * 4
    again = _chain(models)
    assert [a.cache_hit for a in again] == [True] * 4
    np.testing.assert_array_equal(again[3].samples, first[3].samples)
    changed = _chain(models, coarse_temp=0.9)
    assert [a.cache_hit for a in changed] == [True, False, False, False]
    assert changed[1].parent is changed[0]
    assert cache.stats.by_stage["semantic"] == {"hits": 2, "misses": 1}
    assert cache.stats.by_stage["decode"] == {"hits": 1, "misses": 2}


def test_cached_chain_is_served_from_disk_without_loading_any_model(tiny_dir, tmp_path):
    _chain(BarkModels(tiny_dir, device="cpu", cache=StageCache(tmp_path / "c")))
    fresh = BarkModels(tiny_dir, device="cpu", cache=StageCache(tmp_path / "c"))
    out = _chain(fresh)
    assert all(a.cache_hit for a in out)
    assert fresh._loaded == {} and fresh._codec is None
    assert out[3].provenance.lineage == (out[0].id, out[1].id, out[2].id)


def test_before_use_is_called_only_for_stages_that_really_compute(tiny_dir):
    used: list[str] = []
    models = BarkModels(tiny_dir, device="cpu", cache=StageCache(False), before_use=used.append)
    _chain(models)
    assert used == ["text", "coarse", "fine", "codec"]
    used.clear()
    models.unload()
    _chain(models)
    assert used == [] and models._loaded == {} and models._codec is None
    _chain(models, coarse_temp=0.9)
    assert used == ["coarse", "fine", "codec"]


def test_a_cache_lookup_never_downloads_weights(tiny_dir, monkeypatch):
    """Looking up the key of a hub model set must not fetch GBs before the front end announced a download."""
    from bark_core import CheckpointError
    from bark_core.stages import modelset

    asked: list[bool] = []

    def fake_hub_file(repo, filename, *, cache_dir=None, revision=None, local_files_only=None, **_):
        asked.append(bool(local_files_only))
        raise CheckpointError(f"{filename} is not in the hub cache (test)")

    class Placed(Exception):
        pass

    def before_use(stage):
        raise Placed(stage)

    monkeypatch.setattr(modelset, "hub_file", fake_hub_file)
    models = BarkModels("suno", size="small", tokenizer=tiny_dir / "tokenizer", cache=StageCache(False),
                        before_use=before_use)
    with pytest.raises(Placed, match="text"):
        generate_semantic(models, "Not downloaded yet.", seed=1)
    assert asked == [True]  # the lookup asked for the local file only; the load (with announcement) comes next
    assert models.cache.stats.by_stage["semantic"] == {"hits": 0, "misses": 1}


def test_damaged_disk_entries_are_dropped_and_recomputed(tiny_dir, tmp_path):
    folder = tmp_path / "c"
    models = BarkModels(tiny_dir, device="cpu", cache=StageCache(folder))
    sem, coarse, *_ = _chain(models)
    files = sorted(folder.glob("??/*.npz"))
    assert len(files) == 4
    # truncate one entry, swap another for a valid file of different content
    files[0].write_bytes(files[0].read_bytes()[:100])
    other = SemanticTokens(tokens=np.arange(3), provenance=Provenance(stage="x"))
    other.save(files[1])
    fresh = BarkModels(tiny_dir, device="cpu", cache=StageCache(folder))
    out = _chain(fresh)
    assert sum(not a.cache_hit for a in out) >= 1
    assert out[0].id == sem.id and out[1].id == coarse.id  # recomputed to the same results
    assert len(list(folder.glob("??/*.npz"))) == 4
    again = _chain(BarkModels(tiny_dir, device="cpu", cache=StageCache(folder)))
    assert all(a.cache_hit for a in again)


def test_unseeded_runs_are_not_cached_unless_asked(tiny_dir, tmp_path):
    cache = StageCache(False)
    models = BarkModels(tiny_dir, device="cpu", cache=cache)
    a = generate_semantic(models, "No seed.", **SEM)
    b = generate_semantic(models, "No seed.", **SEM)
    assert not a.cache_hit and not b.cache_hit and cache.info()["memory_items"] == 0
    asked = BarkModels(tiny_dir, device="cpu", cache=StageCache(False, cache_unseeded=True))
    a = generate_semantic(asked, "No seed.", **SEM)
    b = generate_semantic(asked, "No seed.", **SEM)
    assert b.cache_hit and b.id == a.id


def test_memory_tier_is_bounded_lru_and_disk_tier_has_a_size_limit(tmp_path):
    cache = StageCache(tmp_path / "c", max_items=2, disk_limit_bytes=10**9)
    arts = [SemanticTokens(tokens=np.arange(n + 1), provenance=Provenance(stage="t")) for n in range(3)]
    for i, art in enumerate(arts):
        cache.put(f"{i:064d}", art)
    assert list(cache._mem) == [f"{1:064d}", f"{2:064d}"]
    assert cache.get(f"{0:064d}").id == arts[0].id  # still on disk
    small = StageCache(tmp_path / "d", disk_limit_bytes=1)
    small.put("a" * 64, arts[0])
    small.put("b" * 64, arts[1])
    assert small.info()["disk_items"] <= 1


text_st = st.sampled_from(["Hello world.", "Hello   world. ", "Hello world!"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.tuples(text_st, st.sampled_from([0.5, 0.7]), st.sampled_from([None, 5]), st.sampled_from([1, 2]),
                   st.sampled_from([None, "v2/en_speaker_6"])),
       b=st.tuples(text_st, st.sampled_from([0.5, 0.7]), st.sampled_from([None, 5]), st.sampled_from([1, 2]),
                   st.sampled_from([None, "v2/en_speaker_6"])))
def test_semantic_key_changes_exactly_when_an_input_that_matters_changes(tiny_dir, a, b):
    cache = StageCache(False)
    models = BarkModels(tiny_dir, device="cpu", cache=cache)
    for text, temp, top_k, seed, voice in (a, b):
        generate_semantic(models, text, voice, temp=temp, top_k=top_k, seed=seed, allow_early_stop=False,
                          max_gen_duration_s=0.05)
    norm = [(" ".join(x[0].split()),) + x[1:] for x in (a, b)]
    same = norm[0] == norm[1]
    assert cache.stats.hits == (1 if same else 0)
    assert cache.info()["memory_items"] == (1 if same else 2)


def test_precision_and_device_are_part_of_the_key(tiny_dir):
    cache = StageCache(False)
    fp32 = BarkModels(tiny_dir, device="cpu", dtype="fp32", cache=cache)
    bf16 = BarkModels(tiny_dir, device="cpu", dtype="bf16", cache=cache)
    generate_semantic(fp32, "Precision.", seed=1, **SEM)
    assert not generate_semantic(bf16, "Precision.", seed=1, **SEM).cache_hit
    assert generate_semantic(fp32, "Precision.", seed=1, **SEM).cache_hit


def test_cache_cli_info_and_clear(tiny_dir, tmp_path, capsys):
    _chain(BarkModels(tiny_dir, device="cpu", cache=StageCache(tmp_path / "c")))
    assert main(["cache", "info", "--dir", str(tmp_path / "c")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["disk_items"] == 4 and info["disk_bytes"] > 0
    assert main(["cache", "clear", "--dir", str(tmp_path / "c")]) == 0
    assert "removed 4" in capsys.readouterr().out
    assert not list((tmp_path / "c").glob("??/*.npz"))


@pytest.mark.parametrize("bad", [True])
def test_cache_true_uses_the_default_folder(tiny_dir, bad):
    models = BarkModels(tiny_dir, device="cpu", cache=bad)
    assert models.cache.folder.name == "stages"


def test_cache_hands_out_copies_so_chains_do_not_cross(tiny_dir):
    models = BarkModels(tiny_dir, device="cpu", cache=StageCache(False))
    sem = generate_semantic(models, "Copies.", seed=1, **SEM)
    coarse = generate_coarse(models, sem, seed=1)
    assert coarse.parent is sem
    reloaded = SemanticTokens(tokens=sem.tokens, provenance=sem.provenance)  # equal, parentless input
    again = generate_coarse(models, reloaded, seed=1)
    assert again.cache_hit and again.parent is reloaded
    assert coarse.parent is sem and not coarse.cache_hit  # the first output is untouched
