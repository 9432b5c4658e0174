"""The fast decoder (static cache, device-side sampling): same tokens as the eager reference under greedy
decoding, the same distribution under sampling, and its per-model state handled safely.

Token-for-token agreement with Suno's code for both decoders is in test_fidelity_suno.py; batch
behaviour for both is in test_batch.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bark_core import BarkModels, generate_coarse, generate_semantic
from bark_core import constants as C
from bark_core.models.tiny import write_tiny_model_set
from bark_core.sampling import filter_logits
from bark_core.sampling.eager import coarse_tokens, semantic_tokens
from bark_core.sampling.fast import (
    DeviceSampler,
    _packed_linear,
    coarse_tokens_fast,
    release,
    resolve_decoder,
    semantic_tokens_fast,
)

TEXT_IDS = np.arange(30) + C.TEXT_ENCODING_OFFSET + 200


@pytest.fixture(scope="module")
def fid_dir(tmp_path_factory):
    return write_tiny_model_set(tmp_path_factory.mktemp("fast"), n_embd=64, n_head=2, seed=3, with_codec=False)


@pytest.fixture()
def models(fid_dir):
    return BarkModels(fid_dir, device="cpu", dtype="fp32")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_greedy_semantic_stops_at_the_same_eos_step_as_the_reference(models):
    """Make EOS win greedily the first time a chosen token would: both loops must stop right there."""
    with models.use("text") as loaded:
        model = loaded.model
        free = semantic_tokens(model, TEXT_IDS, None, generator=_gen(), temp=None, max_gen_duration_s=3.0)
        target = int(free[7])
        first = int(np.argmax(free == target))
        with torch.no_grad():
            head = model.lm_head.weight
            saved = head[C.SEMANTIC_EOS_TOKEN].clone()
            head[C.SEMANTIC_EOS_TOKEN] = head[target] * 1.5
            try:
                want = semantic_tokens(model, TEXT_IDS, None, generator=_gen(), temp=None)
                got = semantic_tokens_fast(model, [TEXT_IDS], [None], [_gen()], temp=None)[0]
            finally:
                head[C.SEMANTIC_EOS_TOKEN] = saved
                release(model)
    assert len(want) == first < 20  # the reference really stopped early, at EOS
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("max_s", [0.5, 1.0, 2.51])
def test_duration_cap_cuts_where_the_reference_cuts(models, max_s):
    with models.use("text") as loaded:
        want = semantic_tokens(loaded.model, TEXT_IDS, None, generator=_gen(), temp=None, max_gen_duration_s=max_s)
        got = semantic_tokens_fast(loaded.model, [TEXT_IDS], [None], [_gen()], temp=None, max_gen_duration_s=max_s)[0]
    np.testing.assert_array_equal(got, want)


def test_greedy_coarse_with_odd_window_matches_the_reference(models):
    """An odd window length makes windows start on either codebook: the on-device parity must follow."""
    sem = np.random.default_rng(4).integers(0, C.SEMANTIC_VOCAB_SIZE, 70)
    with models.use("coarse") as loaded:
        want = coarse_tokens(loaded.model, sem, None, generator=_gen(), temp=None, sliding_window_len=37)
        got = coarse_tokens_fast(loaded.model, [sem], [None], [_gen()], temp=None, sliding_window_len=37)[0]
    assert got.shape == (2, 105)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("top_k,top_p,temp", [(None, None, 1.0), (50, None, 0.7), (None, 0.8, 0.5), (20, 0.9, 1.3)])
def test_device_sampler_draws_from_the_filtered_distribution(top_k, top_p, temp):
    """Chi-square of 20,000 draws against Suno's filtered softmax (the eager path's probabilities)."""
    from scipy.stats import chisquare

    logits = torch.randn(1, 200, generator=_gen(1)) * 2
    want = torch.softmax(filter_logits(logits, top_k, top_p) / temp, dim=-1)[0].double().numpy()
    n = 20_000
    sampler = DeviceSampler([_gen(5)], 200, torch.device("cpu"), temp, top_k, top_p)
    counts = np.zeros(200)
    for _ in range(n):
        sampler.refill()
        ids, probs = sampler(logits)
        counts[int(ids[0])] += 1
    np.testing.assert_allclose(probs[0].double().numpy(), want, rtol=1e-5, atol=1e-7)
    support = want > 0
    assert counts[~support].sum() == 0  # never a filtered-out token
    keep = want * n >= 5  # chi-square needs expected counts >= 5; lump the rest
    f_obs = np.append(counts[keep], counts[support & ~keep].sum())
    f_exp = np.append(want[keep] * n, want[support & ~keep].sum() * n)
    if f_exp[-1] < 5:
        f_obs, f_exp = f_obs[:-1], f_exp[:-1]
    f_exp = f_exp * (f_obs.sum() / f_exp.sum())
    assert chisquare(f_obs, f_exp).pvalue > 1e-3


def test_sampler_rejects_zero_temperature():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DeviceSampler([_gen()], 10, torch.device("cpu"), 0.0, None, None)


def test_sampled_fast_path_is_repeatable_and_seed_dependent(fid_dir):
    models = BarkModels(fid_dir, device="cpu", dtype="fp32", decoder="fast")
    kw = dict(allow_early_stop=False, max_gen_duration_s=1.0, temp=1.0)
    a = generate_semantic(models, "Same seed, same take.", seed=3, **kw)
    b = generate_semantic(models, "Same seed, same take.", seed=3, **kw)
    c = generate_semantic(models, "Same seed, same take.", seed=4, **kw)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, c.tokens)
    assert a.provenance.settings["decoder"] == "fast"


def test_decoder_choice_is_recorded_and_keeps_cache_entries_apart(fid_dir):
    from bark_core.cache import StageCache

    cache = StageCache()
    fast = BarkModels(fid_dir, device="cpu", dtype="fp32", decoder="fast", cache=cache)
    eager = BarkModels(fid_dir, device="cpu", dtype="fp32", decoder="eager", cache=cache)
    kw = dict(allow_early_stop=False, max_gen_duration_s=0.5, seed=1)
    a = generate_semantic(fast, "Kept apart.", **kw)
    b = generate_semantic(eager, "Kept apart.", **kw)
    assert a.provenance.settings["decoder"] == "fast" and b.provenance.settings["decoder"] == "eager"
    assert a.id != b.id  # on CUDA one seed can draw differently on the two paths: never served for each other
    c = generate_coarse(fast, a, seed=2)
    assert c.provenance.settings["decoder"] == "fast"
    assert BarkModels(fid_dir, device="cpu").decoder_for("coarse") == "eager"  # automatic on a CPU


def test_decoder_is_reused_across_calls_and_rebuilt_when_settings_change(models):
    with models.use("text") as loaded:
        model = loaded.model
        one = semantic_tokens_fast(model, [TEXT_IDS], [None], [_gen(1)], temp=0.9, max_gen_duration_s=0.5)[0]
        held = model.__dict__["_bark_fast_decoder"][1]
        two = semantic_tokens_fast(model, [TEXT_IDS], [None], [_gen(1)], temp=0.9, max_gen_duration_s=0.5)[0]
        assert model.__dict__["_bark_fast_decoder"][1] is held  # no new static cache for the same call
        np.testing.assert_array_equal(one, two)  # and no state leaks from the previous run
        semantic_tokens_fast(model, [TEXT_IDS] * 2, [None] * 2, [_gen(1), _gen(2)], temp=0.9, max_gen_duration_s=0.5)
        assert model.__dict__["_bark_fast_decoder"][1] is not held
        release(model)
        assert "_bark_fast_decoder" not in model.__dict__


def test_offload_drops_the_static_cache_with_the_model(fid_dir):
    models = BarkModels(fid_dir, device="cpu", dtype="fp32", decoder="fast", offload=True)
    generate_semantic(models, "Offloaded.", seed=1, allow_early_stop=False, max_gen_duration_s=0.3)
    assert "_bark_fast_decoder" not in models.get("text").model.__dict__


def test_resolve_decoder_names():
    assert resolve_decoder("auto", "cpu") == "eager"
    assert resolve_decoder("auto", "cuda:0") == "fast"
    assert resolve_decoder("fast", "cpu") == "fast" and resolve_decoder(False, "cuda") == "eager"
    with pytest.raises(ValueError, match="Unknown decoder 'quick'"):
        resolve_decoder("quick", "cpu")
    with pytest.raises(ValueError, match="Unknown decoder"):
        BarkModels("suno", decoder="quick")


@pytest.mark.parametrize("rows", [1, 3])
def test_packed_bf16_linear_is_the_same_product(rows):
    w = (torch.randn(96, 64, generator=_gen(2)) * 0.1).to(torch.bfloat16)
    run = _packed_linear(w)
    if run is None:
        pytest.skip("this torch build has no oneDNN packed linear")
    x = torch.randn(rows, 1, 64, generator=_gen(3)).to(torch.bfloat16)
    torch.testing.assert_close(run(x), torch.nn.functional.linear(x, w), rtol=1e-2, atol=1e-2)
    assert run(x).shape == (rows, 1, 96)
    assert _packed_linear(w.float()) is None  # fp32 keeps the plain linear (and its exact reference numerics)


def test_bf16_fast_path_runs_end_to_end_on_cpu(fid_dir):
    models = BarkModels(fid_dir, device="cpu", dtype="bf16", decoder="fast")
    sem = generate_semantic(models, "Half precision.", seed=5, allow_early_stop=False, max_gen_duration_s=0.4)
    coarse = generate_coarse(models, sem, seed=6)
    assert sem.provenance.settings["dtype"] == "bfloat16"
    assert coarse.codes.shape == (2, int(sem.n_frames * 1.5)) and coarse.codes.max() < C.CODEBOOK_SIZE


def test_a_cpu_decoder_frees_its_cache_between_calls_and_repeats_its_tokens(fid_dir):
    # kept, the semantic model's cache stayed resident through every later stage (75 MB in small)
    from bark_core.sampling.fast import _DECODER_ATTR

    models = BarkModels(fid_dir, device="cpu", dtype="bf16", decoder="fast")
    kw = dict(allow_early_stop=False, max_gen_duration_s=0.5, seed=9)
    first = generate_semantic(models, "Twice the same.", **kw)
    dec = models.get("text").model.__dict__[_DECODER_ATTR][1]
    assert dec.cache is None
    coarse = generate_coarse(models, first, seed=2)
    assert models.get("coarse").model.__dict__[_DECODER_ATTR][1].cache is None
    second = generate_semantic(models, "Twice the same.", **kw)
    assert models.get("text").model.__dict__[_DECODER_ATTR][1] is dec  # the decoder (packed weights) is reused
    np.testing.assert_array_equal(first.tokens, second.tokens)
    np.testing.assert_array_equal(coarse.codes, generate_coarse(models, second, seed=2).codes)
