"""Precision choices: weights in fp32/fp16/bf16, or Suno's CUDA mode (fp32 weights under bf16 autocast, TF32).

On a CPU the autocast mode runs under CPU autocast, which shows that every stage really runs inside it,
that it is recorded, and that its cache entries never mix with plain fp32 ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bark_core import BarkModels, StageCache, generate_coarse, generate_semantic
from bark_core import constants as C
from bark_core.models import PRECISION_NAMES, Precision, resolve_dtype, resolve_precision
from bark_core.models.tiny import write_tiny_model_set
from bark_core.sampling.eager import semantic_tokens
from bark_core.sampling.fast import _DECODER_ATTR, release


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model_set(tmp_path_factory.mktemp("prec"), n_embd=64, n_head=2, seed=5, with_codec=False)


def test_precision_names():
    assert resolve_precision("autocast", "cuda") == Precision(torch.float32, torch.bfloat16)
    assert resolve_precision("amp", "cpu").name == "torch.float32+autocast:torch.bfloat16"
    assert resolve_precision("bf16", "cpu").name == "torch.bfloat16"  # plain dtypes keep their old cache names
    assert resolve_precision("auto", "cpu") == Precision(torch.float32)
    assert resolve_dtype("autocast", "cuda") == torch.float32  # the weights stay fp32
    assert set(PRECISION_NAMES) >= {"fp32", "fp16", "bf16", "autocast"}
    with pytest.raises(ValueError, match="autocast"):
        resolve_precision("fp8", "cpu")


def test_autocast_mode_runs_the_stage_under_autocast_and_records_it(tiny):
    models = BarkModels(tiny, device="cpu", dtype="autocast", decoder="eager")
    kw = dict(temp=None, allow_early_stop=False, max_gen_duration_s=0.4)
    sem = generate_semantic(models, "Suno's own mode.", seed=1, **kw)
    model = models.get("text").model
    assert model.lm_head.weight.dtype == torch.float32
    assert sem.provenance.settings["dtype"] == "float32" and sem.provenance.settings["autocast"] == "bfloat16"
    ids = np.asarray(models.tokenizer.encode("Suno's own mode."), dtype=np.int64) + C.TEXT_ENCODING_OFFSET
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = semantic_tokens(model, ids, None, generator=torch.Generator(), temp=None, allow_early_stop=False,
                               max_gen_duration_s=0.4)
    np.testing.assert_array_equal(sem.tokens, want)
    assert not torch.is_autocast_enabled("cpu")  # only inside the stage
    coarse = generate_coarse(models, sem, seed=2)
    assert coarse.provenance.settings["autocast"] == "bfloat16"


def test_autocast_and_fp32_never_share_cache_entries(tiny):
    cache = StageCache()
    kw = dict(allow_early_stop=False, max_gen_duration_s=0.3, seed=3)
    a = generate_semantic(BarkModels(tiny, device="cpu", dtype="fp32", cache=cache), "Kept apart.", **kw)
    b = generate_semantic(BarkModels(tiny, device="cpu", dtype="autocast", cache=cache), "Kept apart.", **kw)
    assert cache.stats.hits == 0 and a.id != b.id
    assert "autocast" not in a.provenance.settings


def test_fast_decoder_under_autocast_keeps_a_bf16_cache_and_rebuilds_when_precision_changes(tiny, monkeypatch):
    from bark_core.sampling.static import StaticDecoder

    used = []  # the cache a call ran with; on a CPU it is freed when the call ends
    park = StaticDecoder.park
    monkeypatch.setattr(StaticDecoder, "park", lambda dec: (used.append(dec.cache.k[0].dtype), park(dec)))
    models = BarkModels(tiny, device="cpu", dtype="autocast", decoder="fast")
    generate_semantic(models, "Half the cache.", seed=4, allow_early_stop=False, max_gen_duration_s=0.3)
    model = models.get("text").model
    dec = model.__dict__[_DECODER_ATTR][1]
    assert used == [torch.bfloat16] and dec.key[2] == torch.bfloat16 and dec.cache is None
    from bark_core.sampling.fast import semantic_tokens_fast

    ids = np.arange(20) + C.TEXT_ENCODING_OFFSET
    semantic_tokens_fast(model, [ids], [None], [torch.Generator()], temp=0.7, max_steps=8)  # no autocast now
    assert model.__dict__[_DECODER_ATTR][1].key[2] is None  # a graph made under autocast is never reused without
    release(model)


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_half_models_on_cpu_keep_an_fp32_cache_and_the_fast_decoder_gives_the_eager_tokens(tiny, dtype):
    # CPU attention over a bf16 cache is several times slower than over fp32; the cache must not change tokens
    # between the decoders, and the keys it holds are the model's own (bf16-rounded) keys
    kw = dict(temp=None, allow_early_stop=False, max_gen_duration_s=0.5, seed=6)
    fast = generate_semantic(BarkModels(tiny, device="cpu", dtype=dtype, decoder="fast"), "Cache dtype.", **kw)
    eager_models = BarkModels(tiny, device="cpu", dtype=dtype, decoder="eager")
    eager = generate_semantic(eager_models, "Cache dtype.", **kw)
    np.testing.assert_array_equal(fast.tokens, eager.tokens)
    model = eager_models.get("text").model
    cache = model.new_cache(1, 8)
    assert cache.k[0].dtype == torch.float32
    ids = torch.arange(5)[None] + C.TEXT_ENCODING_OFFSET
    model(ids, cache)
    keys = cache.k[0][0, :, :5]
    assert torch.equal(keys, keys.to(torch.bfloat16).float())  # stored exactly, not recomputed in fp32
