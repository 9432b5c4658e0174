"""The fast decoder's CUDA-graph path, as far as a CPU can show it.

No GPU runs here, so CUDA-graph capture itself is replaced where a test says so: either by a capture
that fails (as a capture can on CUDA), or by ``emulated_capture``, which returns the very step body a
graph would record (all keys of a bucket, masked) to be run eagerly. That checks everything our code
does around a graph (bucket choice, masking, device-scalar settings, reuse keys, self-check, fallback)
with the real decoding logic; benchmarks/cuda_check.py checks real graphs on a CUDA machine.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bark_core import constants as C
from bark_core.models.gpt import GPT, init_random_, preset_config
from bark_core.sampling import graphs
from bark_core.sampling.eager import coarse_steps, coarse_tokens, semantic_tokens
from bark_core.sampling.fast import _DECODER_ATTR, coarse_tokens_fast, release, semantic_tokens_fast
from bark_core.sampling.graphs import GraphFallbackWarning
from bark_core.sampling.static import NonFiniteLogitsError
from bark_core.voices import Voice

TEXT = np.arange(40) + C.TEXT_ENCODING_OFFSET + 300


def _model(stage: str, seed: int) -> GPT:
    model = GPT(preset_config(stage, "large", n_layer=2, n_head=2, n_embd=32))
    init_random_(model, torch.Generator().manual_seed(seed), std=0.2)  # selective attention, varied tokens
    with torch.no_grad():
        for blk in model.transformer.h:  # sharper attention, so a wrong key or mask shows in the tokens
            blk.attn.c_attn.weight[: 2 * 32].mul_(3.0)
    return model.eval()


@pytest.fixture(scope="module")
def text_model() -> GPT:
    return _model("text", 1)


@pytest.fixture(scope="module")
def coarse_model() -> GPT:
    return _model("coarse", 2)


@pytest.fixture(autouse=True)
def _fresh(text_model, coarse_model):
    """Each test starts with no decoder and no graph verdict on the shared models."""
    for m in (text_model, coarse_model):
        release(m)
        m.__dict__.pop(graphs._VERDICTS, None)
    graphs.set_self_check(None)
    yield
    for m in (text_model, coarse_model):
        release(m)
        m.__dict__.pop(graphs._VERDICTS, None)
    graphs.set_self_check(None)


class Captures:
    """Stands in for CUDA-graph capture: records each bucket's body and returns it (or a broken replay)."""

    def __init__(self, replay: str = "body", fail_after: int | None = None):
        self.replay, self.fail_after = replay, fail_after
        self.count = 0
        self.replays: dict[int, int] = {}

    def __call__(self, body, device, reset, pool=None, warmup=2):
        if self.replay == "raise":
            raise RuntimeError("operation not permitted when stream is capturing")
        for _ in range(warmup):
            reset()
            body()
        reset()
        self.count += 1
        n_keys = body.__defaults__[0]

        def replay():
            self.replays[n_keys] = self.replays.get(n_keys, 0) + 1
            if self.fail_after is not None and sum(self.replays.values()) > self.fail_after:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            if self.replay == "stale":  # an empty graph: nothing runs, the buffers keep their last values
                return
            body()

        return replay


@pytest.fixture()
def capture(monkeypatch):
    def install(**kw) -> Captures:
        fake = Captures(**kw)
        monkeypatch.setattr(graphs, "capture_step", fake)
        return fake

    return install


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sem_fast(model, n=1, seeds=None, temp=None, **kw):
    kw.setdefault("allow_early_stop", False)
    kw.setdefault("max_steps", 120)
    seeds = seeds or list(range(n))
    return semantic_tokens_fast(model, [TEXT[: 20 + 7 * i] for i in range(n)], [None] * n, [_gen(s) for s in seeds],
                                temp=temp, **kw)


def _sem_eager(model, i=0, seed=0, temp=None, **kw):
    kw.setdefault("allow_early_stop", False)
    kw.setdefault("max_steps", 120)
    return semantic_tokens(model, TEXT[: 20 + 7 * i], None, generator=_gen(seed), temp=temp, **kw)


def _warnings_of(caught, category=GraphFallbackWarning):
    return [w for w in caught if issubclass(w.category, category)]


# ---- defect 6: bucketed graphs, their arithmetic against eager in fp32 --------------------------------

def test_bucketed_graph_steps_give_the_eager_tokens_in_fp32(text_model, coarse_model, capture):
    cap = capture()
    want = [_sem_eager(text_model, i, i, max_steps=300) for i in range(2)]
    assert len(set(want[0].tolist())) > 10  # varied tokens: a wrong key or slot would show
    got = _sem_fast(text_model, 2, max_steps=300, graph=True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert cap.count == 4 and set(cap.replays) == {256, 512, 768, 1024}  # the self-check went through each
    cap.replays.clear()
    np.testing.assert_array_equal(_sem_fast(text_model, 1, max_steps=300, graph=True)[0], want[0])
    # 257 prompt positions + 300 steps: 255 steps on the 512-key graph, the rest on the 768-key one
    assert cap.count == 8 and cap.replays == {512: 255, 768: 299 - 255}
    assert graphs.verdict(text_model, text_model.__dict__[_DECODER_ATTR][1].key)[0]  # self-check passed

    rng = np.random.default_rng(3)
    sems = [rng.integers(0, C.SEMANTIC_VOCAB_SIZE, 90), rng.integers(0, C.SEMANTIC_VOCAB_SIZE, 60)]
    voice = Voice(semantic=rng.integers(0, C.SEMANTIC_VOCAB_SIZE, 80), coarse=rng.integers(0, 1024, (2, 120)),
                  fine=rng.integers(0, 1024, (8, 120)), name="h", source={"kind": "test"})
    voices = [voice, None]  # different histories: the second row is left-padded in every window
    want = [coarse_tokens(coarse_model, s, v, generator=_gen(i), temp=None) for i, (s, v) in
            enumerate(zip(sems, voices, strict=True))]
    got = coarse_tokens_fast(coarse_model, sems, voices, [_gen(0), _gen(1)], temp=None, graph=True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    want = coarse_tokens(coarse_model, sems[0], None, generator=_gen(), temp=None, sliding_window_len=37)
    got = coarse_tokens_fast(coarse_model, [sems[0]], [None], [_gen()], temp=None, sliding_window_len=37,
                             graph=True)[0]
    np.testing.assert_array_equal(got, want)


def test_bucket_choice():
    assert graphs.bucket_sizes(1024) == (256, 512, 768, 1024)
    assert graphs.bucket_sizes(600) == (256, 512, 600)
    assert [graphs.bucket_for(n, (256, 512, 768, 1024)) for n in (1, 256, 257, 769, 1024)] == [256, 256, 512, 1024,
                                                                                                1024]
    with pytest.raises(ValueError):
        graphs.bucket_for(1025, (256, 1024))


def test_graph_eos_stop_matches_the_reference(text_model, capture):
    capture()
    free = _sem_eager(text_model, max_steps=30)
    target = int(free[7])
    head = text_model.lm_head.weight
    with torch.no_grad():
        saved = head[C.SEMANTIC_EOS_TOKEN].clone()
        head[C.SEMANTIC_EOS_TOKEN] = head[target] * 1.5
    try:
        want = [_sem_eager(text_model, i, i, allow_early_stop=True) for i in range(3)]
        got = _sem_fast(text_model, 3, allow_early_stop=True, graph=True)
    finally:
        with torch.no_grad():
            head[C.SEMANTIC_EOS_TOKEN] = saved
    assert len(want[0]) < 30
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_graphs_captured_under_autocast_pass_the_self_check(text_model, capture):
    """Suno's precision mode: the step is captured under autocast (its weight cache off) and still checks out."""
    capture()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _sem_fast(text_model, max_steps=30, graph=True)
    dec = text_model.__dict__[_DECODER_ATTR][1]
    assert dec.key[2] == torch.bfloat16 and dec.graphs
    ok, reason = graphs.verdict(text_model, dec.key)
    assert ok, reason


# ---- defect 4: settings are device scalars ----------------------------------------------------------

def test_changing_temperature_top_p_and_min_eos_p_reuses_the_graphs(text_model, capture):
    cap = capture()
    settings = [dict(temp=0.7, top_p=0.9, min_eos_p=0.2), dict(temp=1.3, top_p=0.5, min_eos_p=0.6),
                dict(temp=0.4, top_p=0.99, min_eos_p=0.05)]
    held = None
    for s in settings:
        got = _sem_fast(text_model, 1, [5], allow_early_stop=True, graph=True, max_steps=50, **s)[0]
        dec = text_model.__dict__[_DECODER_ATTR][1]
        held = held or dec
        assert dec is held and cap.count == 4  # one decoder, one capture per bucket, for all settings
        # and the new values are really read: the eager reference with these settings, same seed
        np.testing.assert_array_equal(got, _sem_eager(text_model, 0, 5, allow_early_stop=True, max_steps=50, **s))
    _sem_fast(text_model, 1, [5], temp=None, graph=True)  # greedy is another step: a new decoder
    assert text_model.__dict__[_DECODER_ATTR][1] is not held


# ---- point 8: on the CPU the fast path draws the eager path's tokens ---------------------------------

@pytest.mark.parametrize("top_k,top_p,temp", [(None, None, 0.7), (50, 0.9, 1.0)])
def test_sampled_fast_tokens_equal_eager_tokens_on_cpu(text_model, coarse_model, top_k, top_p, temp):
    for seed in range(4):
        kw = dict(temp=temp, top_k=top_k, top_p=top_p, allow_early_stop=True, max_steps=60)
        np.testing.assert_array_equal(_sem_fast(text_model, 1, [seed], **kw)[0],
                                      _sem_eager(text_model, 0, seed, **kw))
    sem = np.random.default_rng(1).integers(0, C.SEMANTIC_VOCAB_SIZE, 40)
    for seed in range(2):
        kw = dict(temp=temp, top_k=top_k, top_p=top_p)
        np.testing.assert_array_equal(coarse_tokens_fast(coarse_model, [sem], [None], [_gen(seed)], **kw)[0],
                                      coarse_tokens(coarse_model, sem, None, generator=_gen(seed), **kw))


# ---- defect 2: reuse keyed on every weight's address ------------------------------------------------

def test_decoder_is_rebuilt_when_any_weight_moves(text_model, capture):
    capture()
    want = _sem_eager(text_model, max_steps=60)
    _sem_fast(text_model, max_steps=60, graph=True)
    held = text_model.__dict__[_DECODER_ATTR][1]
    w = text_model.transformer.h[1].mlp.c_fc.weight
    old = w.data
    w.data = old.clone()  # same values at a new address, as a device round trip gives; lm_head stays put
    try:
        with torch.no_grad():
            old.zero_()  # the old storage now holds other data: a stale graph would read it
        got = _sem_fast(text_model, max_steps=60, graph=True)[0]
        assert text_model.__dict__[_DECODER_ATTR][1] is not held
        np.testing.assert_array_equal(got, want)
    finally:
        with torch.no_grad():
            old.copy_(w.data)
        w.data = old


# ---- defect 3: capture and replay failures fall back to eager steps ------------------------------------

def test_forced_capture_failure_falls_back_with_one_warning_and_correct_tokens(text_model, coarse_model, capture):
    capture(replay="raise")
    want = _sem_eager(text_model, max_steps=80)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _sem_fast(text_model, max_steps=80, graph=True)[0]
        second = _sem_fast(text_model, 2, [0, 1], max_steps=80, graph=True)[0]  # a new decoder, same model
    assert len(_warnings_of(caught)) == 1
    assert "operation not permitted" in str(_warnings_of(caught)[0].message)
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(second, want)
    assert not text_model.__dict__[_DECODER_ATTR][1].graphs


def test_replay_failure_mid_take_finishes_the_take_eagerly(text_model, capture):
    capture(fail_after=20)
    want = _sem_eager(text_model, max_steps=80, temp=0.8, seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _sem_fast(text_model, 1, [4], temp=0.8, max_steps=80, graph=True)[0]
    assert len(_warnings_of(caught)) == 1 and "illegal memory access" in str(_warnings_of(caught)[0].message)
    np.testing.assert_array_equal(got, want)


def test_graphs_requested_off_cuda_fall_back_through_the_real_capture(text_model):
    want = _sem_eager(text_model, max_steps=40)
    with pytest.warns(GraphFallbackWarning, match="CUDA graphs need a CUDA device"):
        got = _sem_fast(text_model, max_steps=40, graph=True)[0]
    np.testing.assert_array_equal(got, want)


def test_an_empty_graph_is_an_error_not_a_warning():
    def caught(text: str) -> list[warnings.WarningMessage]:
        return [warnings.WarningMessage(UserWarning(text), UserWarning, "graphs.py", 1)]

    empty = caught("The CUDA Graph is empty. This usually means that the graph was attempted to be captured on "
                   "wrong device or stream.")
    with pytest.raises(graphs.GraphCaptureError, match="empty CUDA graph"):
        graphs.check_capture_warnings(empty, torch.device("cuda:1"))
    with pytest.warns(UserWarning, match="something else"):
        graphs.check_capture_warnings(caught("something else"), torch.device("cuda:0"))


# ---- guard rail: the self-check -----------------------------------------------------------------------

def test_self_check_catches_a_stale_graph_and_falls_back(text_model, capture):
    cap = capture(replay="stale")
    want = _sem_eager(text_model, max_steps=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _sem_fast(text_model, max_steps=60, graph=True)[0]
        again = _sem_fast(text_model, 2, [0, 1], max_steps=60, graph=True)[0]
    msgs = [str(w.message) for w in _warnings_of(caught)]
    assert len(msgs) == 1 and "disagree with the eager model" in msgs[0]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(again, want)
    assert cap.count == 4  # the verdict is cached: no second capture for this model and device


def test_self_check_verdict_is_cached_and_can_be_switched_off(text_model, capture, monkeypatch):
    cap = capture(replay="stale")
    monkeypatch.setenv(graphs.SELF_CHECK_ENV, "0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _sem_fast(text_model, max_steps=60, graph=True)[0]
    assert not _warnings_of(caught) and cap.count == 4
    assert not np.array_equal(got, _sem_eager(text_model, max_steps=60))  # what the check exists to catch
    monkeypatch.delenv(graphs.SELF_CHECK_ENV)
    graphs.set_self_check(False)
    assert not graphs.self_check_enabled()
    graphs.set_self_check(None)
    assert graphs.self_check_enabled()


def test_logits_agree_tolerates_rounding_and_rejects_stale_or_nan():
    g = torch.Generator().manual_seed(0)
    eager = torch.randn(6, 10_000, generator=g) * 3
    rounded = eager.bfloat16().float() + torch.randn(6, 10_000, generator=g) * 0.02
    assert graphs.logits_agree(rounded, eager, half=True)[0]
    assert not graphs.logits_agree(rounded, eager, half=False)[0]  # bf16-sized error is too much in fp32
    stale = torch.roll(eager, 1, dims=0)
    ok, detail = graphs.logits_agree(stale, eager, half=True)
    assert not ok and detail["max_err_in_std"] > 1
    nan = eager.clone()
    nan[2, 7] = float("nan")
    assert not graphs.logits_agree(nan, eager, half=True)[0]


# ---- defect 7: NaN/inf fail loudly ------------------------------------------------------------------

@pytest.mark.parametrize("temp", [None, 0.7])
def test_nan_or_inf_logits_raise_instead_of_drawing(text_model, coarse_model, temp):
    for model, poison in ((text_model, float("nan")), (coarse_model, float("inf"))):
        w = model.transformer.ln_f.weight
        saved = w.detach().clone()
        with torch.no_grad():
            w[3] = poison
        try:
            with pytest.raises(NonFiniteLogitsError, match="NaN or infinite logits"):
                if model is text_model:
                    _sem_fast(model, 2, temp=temp, max_steps=40)
                else:
                    sem = np.random.default_rng(0).integers(0, C.SEMANTIC_VOCAB_SIZE, 30)
                    coarse_tokens_fast(model, [sem], [None], [_gen()], temp=temp)
        finally:
            with torch.no_grad():
                w.copy_(saved)


# ---- defect 5: no host reads or uploads per coarse window -----------------------------------------

class HostTraffic(TorchDispatchMode):
    """Counts the ops through which the host reads a device value or uploads host data."""

    NAMES = ("lift_fresh", "item", "_local_scalar_dense", "is_nonzero", "equal")

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in self.NAMES:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_coarse_windows_need_no_host_reads_or_uploads(coarse_model):
    rng = np.random.default_rng(5)
    counts = {}
    kw = dict(temp=0.7, sliding_window_len=10)
    for n_sem in (3, 20):  # 8 coarse steps in one window, 60 in six
        sems = [rng.integers(0, C.SEMANTIC_VOCAB_SIZE, n_sem), rng.integers(0, C.SEMANTIC_VOCAB_SIZE, n_sem - 1)]
        coarse_tokens_fast(coarse_model, sems, [None, None], [_gen(), _gen(1)], **kw)  # build the decoder
        with HostTraffic() as traffic:
            coarse_tokens_fast(coarse_model, sems, [None, None], [_gen(), _gen(1)], **kw)
        counts[math.ceil(coarse_steps(n_sem) / 10)] = traffic.count
    assert set(counts) == {1, 6}
    assert counts[6] == counts[1], counts  # per call, not per window
