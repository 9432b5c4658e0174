"""Weight-only int8: what users see is a precision name, logits close to fp32's, a quarter of fp32's
weight bytes, the fast decoder's tokens equal to the eager ones, records that say int8, and one clear
error where the int8 kernel is missing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from bark_core import BarkModels, StageCache, generate, generate_semantic
from bark_core.models import PRECISION_NAMES, Precision, resolve_precision
from bark_core.models.gpt import GPT, FineGPT, init_random_, preset_config
from bark_core.models.quant import Int8Embedding, Int8Linear, Int8UnsupportedError, check_int8, quantize_, weight_bytes
from bark_core.models.tiny import write_tiny_model_set
from bark_core.sampling.eager import semantic_tokens
from bark_core.sampling.fast import semantic_tokens_fast

# int8 logits against fp32, in standard deviations of the fp32 logits (see README "int8"; measured
# 0.07 max / 0.010 mean at this shape; bf16 alone gives 0.03 max)
MAX_ERR_STD, MEAN_ERR_STD = 0.25, 0.05


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model_set(tmp_path_factory.mktemp("int8"), n_embd=64, n_head=2, seed=5)


def _random_gpt(seed: int = 1) -> GPT:
    cfg = preset_config("coarse", "small", n_embd=128, n_head=2, n_layer=2)
    return init_random_(GPT(cfg).eval(), torch.Generator().manual_seed(seed))


def test_int8_is_a_precision_name():
    assert "int8" in PRECISION_NAMES
    p = resolve_precision("int8", "cpu")
    assert p == Precision(torch.bfloat16, quant="int8") and p.name == "int8"
    assert resolve_precision("bf16", "cpu").name == "torch.bfloat16"


def test_int8_logits_stay_within_the_documented_bound_of_fp32():
    model = _random_gpt()
    q = quantize_(copy.deepcopy(model)).to(torch.bfloat16)
    assert isinstance(q.lm_head, Int8Linear) and q.lm_head.weight.dtype == torch.int8
    assert isinstance(q.transformer.wte, Int8Embedding) and q.transformer.wte.weight.dtype == torch.int8
    assert q.transformer.wpe.weight.dtype == torch.bfloat16 and q.transformer.ln_f.weight.dtype == torch.bfloat16
    x = torch.randint(0, 10_000, (1, 64), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(x, all_logits=True).float()
        got = q(x, all_logits=True).float()
    err = (got - want).abs() / want.std()
    assert err.max() < MAX_ERR_STD and err.mean() < MEAN_ERR_STD
    assert err.max() > 0  # really quantised


def test_int8_stores_a_quarter_of_fp32s_linear_bytes_and_leaves_tied_heads_alone():
    model = _random_gpt()
    q = quantize_(copy.deepcopy(model)).to(torch.bfloat16)
    lin32 = sum(m.weight.numel() * 4 for m in model.modules() if isinstance(m, torch.nn.Linear))
    lin8 = sum(m.weight.numel() + m.scale.numel() * 2 for m in q.modules() if isinstance(m, Int8Linear))
    assert lin8 < 0.26 * lin32
    emb32 = model.transformer.wte.weight.numel() * 4
    emb8 = q.transformer.wte.weight.numel() + q.transformer.wte.scale.numel() * 2
    assert emb8 < 0.26 * emb32  # the token table too: in small Bark's semantic model it outweighs the blocks
    embeddings = sum(m.weight.numel() * 2 for m in q.modules() if isinstance(m, torch.nn.Embedding))
    assert weight_bytes(q) < embeddings + 0.55 * (lin32 + emb32)  # nothing else grew: no float copy kept
    cfg = preset_config("fine", "small", n_embd=64, n_head=2, n_layer=1)
    fine = quantize_(init_random_(FineGPT(cfg).eval(), torch.Generator().manual_seed(3)))
    assert all(isinstance(h, torch.nn.Linear) for h in fine.lm_heads)  # tied to the embeddings: one copy, bf16
    assert fine.transformer.wtes[1].weight is fine.lm_heads[0].weight
    assert isinstance(fine.transformer.h[0].mlp.c_fc, Int8Linear)


def test_fast_decoder_gives_the_eager_tokens_in_int8(tiny):
    models = BarkModels(tiny, device="cpu", dtype="int8")
    model = models.get("text").model
    assert isinstance(model.lm_head, Int8Linear)
    ids = np.asarray(models.tokenizer.encode("Int eight."), dtype=np.int64) + 10_048
    for temp in (None, 0.7):
        kw = dict(temp=temp, allow_early_stop=False, max_gen_duration_s=0.5)
        want = semantic_tokens(model, ids, None, generator=torch.Generator().manual_seed(4), **kw)
        got = semantic_tokens_fast(model, [ids], [None], [torch.Generator().manual_seed(4)], **kw)[0]
        np.testing.assert_array_equal(got, want)


def test_int8_takes_record_int8_and_never_share_cache_entries_with_bf16(tiny):
    cache = StageCache()
    kw = dict(allow_early_stop=False, max_gen_duration_s=0.3, seed=3)
    a = generate_semantic(BarkModels(tiny, device="cpu", dtype="bf16", cache=cache), "Kept apart.", **kw)
    b = generate_semantic(BarkModels(tiny, device="cpu", dtype="int8", cache=cache), "Kept apart.", **kw)
    assert cache.stats.hits == 0 and a.id != b.id
    assert b.provenance.settings["dtype"] == "int8" and b.provenance.settings["activations"] == "bfloat16"
    take = generate(BarkModels(tiny, device="cpu", dtype={"text": "int8", "default": "fp32"}, decoder="fast"),
                    "Per stage.", seed=5, max_gen_duration_s=0.3)
    assert take.semantic.provenance.settings["dtype"] == "int8"
    assert take.coarse.provenance.settings["dtype"] == "float32"
    assert take.audio.samples.size > 0 and np.isfinite(take.audio.samples).all()


def test_int8_without_a_kernel_names_the_bf16_fallback(tiny, monkeypatch):
    with pytest.raises(Int8UnsupportedError, match="bf16"):
        check_int8("mps")
    import bark_core.models.quant as quant

    monkeypatch.setattr(quant, "_probe", lambda device: "no int8 product in this build")
    with pytest.raises(Int8UnsupportedError, match=r"dtype of text 'int8' cannot run here.*dtype of text='bf16'"):
        BarkModels(tiny, device="cpu", dtype="int8")


def test_bark_say_dtype_int8_records_int8(tiny_dir, tmp_path):
    from bark_core import load_artifact
    from bark_core.cli import say_main

    arts = tmp_path / "arts"
    assert say_main(["Int eight", "--models", str(tiny_dir), "--device", "cpu", "--seed", "2", "-q",
                     "--max-duration", "1", "--dtype", "int8", "--decoder", "fast", "-o", str(tmp_path / "i.wav"),
                     "--save-artifacts", str(arts)]) == 0
    assert (tmp_path / "i.wav").stat().st_size > 1000
    assert load_artifact(arts / "i.semantic.npz").provenance.settings["dtype"] == "int8"
    assert load_artifact(arts / "i.fine.npz").provenance.settings["dtype"] == "int8"


def test_studio_offers_int8_and_shows_it_for_an_int8_model_set(tiny_dir):
    pytest.importorskip("ipywidgets", minversion="8")
    from bark_studio import Session

    given = Session(BarkModels(tiny_dir, device="cpu", dtype="int8"), cache=False, text="x", device="cpu")
    assert given.settings["dtype"] == "int8"
    chosen = Session(tiny_dir, cache=False, text="x", device="cpu", dtype="int8")
    assert chosen.settings["dtype"] == "int8"


def test_quantisation_frees_each_float_layer_as_it_goes(monkeypatch):
    # holding every float layer until the end kept the whole fp32 model beside the int8 one: the load peak
    import weakref

    from bark_core.models import quant

    model = _random_gpt()
    head = weakref.ref(model.lm_head.weight)  # quantised before the token table
    seen = []
    real = quant.Int8Embedding.from_float.__func__

    def spy(cls, weight, dtype=torch.bfloat16):
        seen.append(head() is None)
        return real(cls, weight, dtype)

    monkeypatch.setattr(quant.Int8Embedding, "from_float", classmethod(spy))
    quantize_(model)
    assert seen == [True]
