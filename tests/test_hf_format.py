"""transformers-format Bark checkpoints load into our models and give transformers' logits.

A tiny random ``BarkModel`` with the real vocabularies is saved the ways the Hub repos are laid
out (safetensors, sharded safetensors, a transformers-4 style ``pytorch_model.bin``, sharded .bin)
and each stage, loaded with ``load_hf_stage``, is run against the transformers sub-model.
"""

from __future__ import annotations

import datetime
import importlib.machinery
import json
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch

from bark_core import constants as C
from bark_core.errors import CheckpointError
from bark_core.models.gpt import GPTConfig, build_model
from bark_core.models.hf_format import convert_hf_state_dict, load_hf_stage, resolve_hf_files

try:  # shared helper of the reference tests (tests/ is on sys.path under pytest), when present
    from reference import stub_broken_torchaudio
except ImportError:
    def stub_broken_torchaudio() -> None:
        """The venv's torchaudio is broken and transformers imports it; an empty module will do."""
        if "torchaudio" not in sys.modules:
            stub = types.ModuleType("torchaudio")
            stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
            sys.modules["torchaudio"] = stub

stub_broken_torchaudio()
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

TOL = 1e-4
TINY = dict(num_layers=2, num_heads=2, hidden_size=64, bias=False, block_size=1024, dropout=0.0)
VOCAB = {"text": (C.TEXT_INPUT_VOCAB, C.TEXT_OUTPUT_VOCAB), "coarse": (C.COARSE_VOCAB, C.COARSE_VOCAB),
         "fine": (C.FINE_VOCAB, C.FINE_VOCAB)}
HF_ATTR = {"text": "semantic", "coarse": "coarse_acoustics", "fine": "fine_acoustics"}


def _randomize_(model: torch.nn.Module, seed: int, width: int) -> None:
    """Weights far from the init, so a misplaced tensor (or a LayerNorm left at 1) shows in the logits.

    The scale shrinks with the width so logits stay O(1) to O(10): the 1e-4 tolerance is absolute.
    """
    g = torch.Generator().manual_seed(seed)
    std = 1.2 / width**0.5
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied parameters are listed once and stay tied
            noise = torch.randn(p.shape, generator=g)
            if "layernorm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * noise)
            else:
                p.copy_(std * noise)


def _tiny_bark_config():
    from transformers import BarkCoarseConfig, BarkConfig, BarkFineConfig, BarkSemanticConfig, EncodecConfig

    # the smallest Encodec transformers accepts that still builds: the codec is irrelevant here
    codec = EncodecConfig(num_filters=2, hidden_size=8, codebook_size=16, codebook_dim=8, num_residual_layers=1,
                          upsampling_ratios=[2, 2], num_lstm_layers=1)
    return BarkConfig(
        semantic_config=BarkSemanticConfig(input_vocab_size=VOCAB["text"][0], output_vocab_size=VOCAB["text"][1],
                                           **TINY).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(input_vocab_size=VOCAB["coarse"][0],
                                                 output_vocab_size=VOCAB["coarse"][1], **TINY).to_dict(),
        fine_acoustics_config=BarkFineConfig(input_vocab_size=VOCAB["fine"][0], output_vocab_size=VOCAB["fine"][1],
                                             **TINY).to_dict(),
        codec_config=codec.to_dict(),
    )


def _write_bin_copy(src: Path, dst: Path, state_dict: dict[str, torch.Tensor], n_shards: int) -> None:
    """A transformers-4 style save: pickled state dict with tied duplicates and mask buffers."""
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    sd = {k: v.detach().clone() for k, v in state_dict.items()}
    if n_shards == 1:
        torch.save(sd, dst / "pytorch_model.bin")
        return
    keys = sorted(sd)
    weight_map = {}
    for i in range(n_shards):
        name = f"pytorch_model-{i + 1:05d}-of-{n_shards:05d}.bin"
        part = keys[i::n_shards]
        torch.save({k: sd[k] for k in part}, dst / name)
        weight_map.update(dict.fromkeys(part, name))
    (dst / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.fixture(scope="module")
def bark(tmp_path_factory):
    """(transformers BarkModel, {layout: folder}) for one tiny random model."""
    from transformers import BarkModel

    torch.manual_seed(0)
    model = BarkModel(_tiny_bark_config()).eval()
    _randomize_(model, seed=1, width=TINY["hidden_size"])
    root = tmp_path_factory.mktemp("hf_bark")
    dirs = {"safetensors": root / "st", "sharded": root / "st_sharded", "bin": root / "bin",
            "bin_sharded": root / "bin_sharded"}
    model.save_pretrained(dirs["safetensors"])
    model.save_pretrained(dirs["sharded"], max_shard_size="20MB")
    assert (dirs["sharded"] / "model.safetensors.index.json").is_file()
    _write_bin_copy(dirs["safetensors"], dirs["bin"], model.state_dict(), 1)
    _write_bin_copy(dirs["safetensors"], dirs["bin_sharded"], model.state_dict(), 3)
    return model, dirs


def _ours(folder: Path, stage: str):
    cfg, sd, checksum = load_hf_stage(folder, stage)
    model = build_model(stage, cfg).eval()
    model.load_state_dict(sd)  # strict: every key present, nothing extra
    return model, cfg, checksum


def _check_causal(ours, theirs, idx: torch.Tensor, n_prompt: int) -> float:
    """Worst |difference| over full, last-position and KV-cached logits."""
    with torch.no_grad():
        ref = theirs(input_ids=idx, use_cache=False).logits
        full = ours(idx, all_logits=True)
        last = ours(idx)
        cache = ours.new_cache(batch=idx.shape[0])
        steps = [ours(idx[:, :n_prompt], cache)]
        steps += [ours(idx[:, i:i + 1], cache) for i in range(n_prompt, idx.shape[1])]
    cached = torch.cat(steps, dim=1)
    assert full.shape == ref.shape and last.shape == (idx.shape[0], 1, ref.shape[-1])
    return max((full - ref).abs().max().item(), (last - ref[:, -1:]).abs().max().item(),
               (cached - ref[:, n_prompt - 1:]).abs().max().item())


@pytest.mark.parametrize("layout", ["safetensors", "sharded", "bin", "bin_sharded"])
@pytest.mark.parametrize("stage", ["text", "coarse"])
def test_causal_stage_matches_transformers(bark, stage, layout):
    hf_model, dirs = bark
    ours, cfg, _ = _ours(dirs[layout], stage)
    assert cfg == GPTConfig(block_size=1024, input_vocab_size=VOCAB[stage][0], output_vocab_size=VOCAB[stage][1],
                            n_layer=2, n_head=2, n_embd=64, dropout=0.0, bias=False)
    idx = torch.randint(0, cfg.input_vocab_size, (2, 24), generator=torch.Generator().manual_seed(2))
    worst = _check_causal(ours, getattr(hf_model, HF_ATTR[stage]), idx, n_prompt=9)
    assert worst < TOL, f"{stage}/{layout}: max |logit diff| {worst:.2e}"


@pytest.mark.parametrize("layout", ["safetensors", "sharded", "bin", "bin_sharded"])
def test_fine_stage_matches_transformers(bark, layout):
    hf_model, dirs = bark
    ours, cfg, _ = _ours(dirs[layout], "fine")
    assert (cfg.n_codes_total, cfg.n_codes_given, cfg.input_vocab_size) == (8, 1, C.FINE_VOCAB)
    # the tie survived: each head is the embedding of the codebook it predicts
    assert ours.lm_heads[0].weight is ours.transformer.wtes[1].weight
    idx = torch.randint(0, cfg.input_vocab_size, (2, 30, 8), generator=torch.Generator().manual_seed(3))
    worst = 0.0
    with torch.no_grad():
        for pred_idx in range(1, 8):
            ref = hf_model.fine_acoustics(codebook_idx=pred_idx, input_ids=idx).logits
            worst = max(worst, (ours(pred_idx, idx) - ref).abs().max().item())
    assert worst < TOL, f"fine/{layout}: max |logit diff| {worst:.2e}"


def test_checksum_is_per_stage_and_format_independent(bark):
    _, dirs = bark
    sums = {stage: {load_hf_stage(d, stage)[2] for d in dirs.values()} for stage in ("text", "coarse", "fine")}
    assert all(len(s) == 1 for s in sums.values()), sums
    assert len({next(iter(s)) for s in sums.values()}) == 3
    assert all(len(next(iter(s))) == 64 for s in sums.values())


@pytest.mark.parametrize("stage", ["text", "coarse", "fine"])
@pytest.mark.parametrize("layout", ["safetensors", "sharded", "bin"])
def test_reading_cast_gives_the_stored_checksum_and_the_cast_weights(bark, stage, layout, monkeypatch):
    # casting while reading (one tensor, or one block of rows, at a time) is what keeps a bf16/int8 load from
    # holding the whole stage in fp32 first; the checksum must still name the weights as stored
    from bark_core.models import hf_format

    _, dirs = bark
    cfg, stored, checksum = load_hf_stage(dirs[layout], stage)
    monkeypatch.setattr(hf_format, "READ_BLOCK", 4096)  # tiny tables: force the block-by-block reads
    _, cast, cast_checksum = load_hf_stage(dirs[layout], stage, cast=torch.bfloat16)
    assert cast_checksum == checksum and set(cast) == set(stored)
    for name, t in stored.items():
        assert cast[name].dtype == torch.bfloat16 and torch.equal(cast[name], t.to(torch.bfloat16)), name
    model = build_model(stage, cfg).to(torch.bfloat16).eval()
    model.load_state_dict(cast)


def test_resolve_prefers_safetensors(bark, tmp_path):
    _, dirs = bark
    both = tmp_path / "both"
    shutil.copytree(dirs["bin"], both)
    shutil.copy(dirs["safetensors"] / "model.safetensors", both / "model.safetensors")
    config, files = resolve_hf_files(str(both))
    assert config == both / "config.json" and files == [both / "model.safetensors"]
    _, shards = resolve_hf_files(dirs["bin_sharded"])
    assert len(shards) == 3 and all(p.suffix == ".bin" for p in shards)


def test_small_width_lone_submodel(tmp_path):
    """Real bark-small width (12 x 768) for the coarse stage, saved as a lone BarkCoarseModel."""
    from transformers import BarkCoarseConfig, BarkCoarseModel

    torch.manual_seed(0)
    cfg = BarkCoarseConfig(input_vocab_size=C.COARSE_VOCAB, output_vocab_size=C.COARSE_VOCAB, num_layers=12,
                           num_heads=12, hidden_size=768, bias=False, block_size=1024)
    hf_model = BarkCoarseModel(cfg).eval()
    _randomize_(hf_model, seed=4, width=768)
    hf_model.save_pretrained(tmp_path)
    ours, our_cfg, _ = _ours(tmp_path, "coarse")
    assert (our_cfg.n_layer, our_cfg.n_head, our_cfg.n_embd, our_cfg.block_size) == (12, 12, 768, 1024)
    idx = torch.randint(0, C.COARSE_VOCAB, (1, 40), generator=torch.Generator().manual_seed(5))
    worst = _check_causal(ours, hf_model, idx, n_prompt=30)
    assert worst < TOL, f"small coarse: max |logit diff| {worst:.2e}"


def test_missing_folder_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="config.json") as err:
        load_hf_stage(tmp_path / "nowhere", "text")
    assert "nowhere" in str(err.value)


def test_folder_without_weights_names_the_files(bark, tmp_path):
    _, dirs = bark
    shutil.copy(dirs["safetensors"] / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="model.safetensors") as err:
        resolve_hf_files(tmp_path)
    assert "pytorch_model.bin" in str(err.value)


def test_missing_hub_repo_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="config.json") as err:
        load_hf_stage(C.HUB_REPO_SMALL, "coarse", cache_dir=tmp_path)
    msg = str(err.value)
    assert C.HUB_REPO_SMALL in msg and "folder" in msg


def test_bin_with_code_is_refused(bark, tmp_path):
    _, dirs = bark
    shutil.copy(dirs["safetensors"] / "config.json", tmp_path / "config.json")
    torch.save({"semantic.lm_head.weight": torch.zeros(1), "when": datetime.date(2023, 4, 1)},
               tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        load_hf_stage(tmp_path, "text")


def test_wrong_config_or_untied_fine_is_refused(bark, tmp_path):
    hf_model, dirs = bark
    bad = tmp_path / "bad"
    shutil.copytree(dirs["safetensors"], bad)
    config = json.loads((bad / "config.json").read_text())
    config["semantic_config"]["hidden_size"] = 128
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_hf_stage(bad, "text")

    fine_sd = {k: v.clone() for k, v in hf_model.fine_acoustics.state_dict().items()}
    fine_sd["lm_heads.0.weight"] += 1.0
    cfg = load_hf_stage(dirs["safetensors"], "fine")[0]
    with pytest.raises(CheckpointError, match="untied"):
        convert_hf_state_dict(fine_sd, "fine", cfg, tied=False)


def test_hub_repo_from_cache_offline(bark, tmp_path, monkeypatch):
    """A repo id resolves through the hub cache layout without any network (HF_HUB_OFFLINE)."""
    _, dirs = bark
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / "models--suno--bark-small"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(dirs["bin"], snapshot)
    shutil.copy(dirs["safetensors"] / "model.safetensors", snapshot / "model.safetensors")
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config, files = resolve_hf_files(C.HUB_REPO_SMALL, cache_dir=tmp_path)
    assert config == snapshot / "config.json" and files == [snapshot / "model.safetensors"]
    cfg, sd, checksum = load_hf_stage(C.HUB_REPO_SMALL, "coarse", cache_dir=tmp_path)
    assert checksum == load_hf_stage(dirs["bin"], "coarse")[2]


def test_pipeline_runs_on_a_transformers_format_folder(bark, tiny_dir):
    """BarkModels detects the layout from config.json and the stages run on it."""
    from bark_core import BarkModels, generate_coarse, generate_fine, generate_semantic

    models = BarkModels(bark[1]["safetensors"], device="cpu", tokenizer=tiny_dir / "tokenizer")
    sem = generate_semantic(models, "From a transformers folder.", seed=0, allow_early_stop=False,
                            max_gen_duration_s=0.5)
    fine = generate_fine(models, generate_coarse(models, sem, seed=0), seed=0)
    assert len(sem.tokens) == 25 and fine.codes.shape[0] == 8
    assert sem.provenance.model.endswith(":text") and len(sem.provenance.model_checksum) == 64
