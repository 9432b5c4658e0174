"""Check the fast decoder on a CUDA machine, with random weights at Bark's real shape; one JSON line out.

    python benchmarks/cuda_check.py                      # CUDA, large shape, bf16 (< 6 min planned)
    python benchmarks/cuda_check.py --cpu-smoke          # CPU, tiny shape: the script and its checks run (CI)
    python benchmarks/cuda_check.py --device cpu --size large --only P --steps 200  # precision drift, CPU

Required checks (a failure sets ``passed`` false and the exit code 1):
  A  fp32, TF32 off: fast == eager tokens, greedy: semantic 200 steps at batch 1 and 3, coarse over
     2 windows, a 37-token window, batch 2 with left padding, EOS stops.
  B  graph replay == the same bucketed step body run eagerly (bf16). With --cpu-smoke there is no
     graph: B checks the bucket bodies (all keys of a bucket, masked) against the eager step in fp32.
  C  bf16 logits, teacher-forced: the fast step is as close to an fp32 copy as the eager step is.
  D  same seed repeats, another seed differs (batch 1 and 8, top-k/top-p, coarse).
  S  temperature, top-p and min-EOS-p changed between calls: no new decoder, no new capture.
  F  the first-build self-check passes (and its time); NaN logits raise; no graph fell back to eager.
  G  with 2+ GPUs: a model on the non-current GPU gives the eager tokens.
Information: P (first-step logit error and the step where greedy tokens leave fp32's, for bf16 weights
and for fp32 weights under bf16 autocast), T (ms per token eager vs fast at batch 1 and 8, peak and
retained memory). Exit 2: no CUDA without --cpu-smoke or --device cpu.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bark_core import constants as C  # noqa: E402
from bark_core.models.device import resolve_precision  # noqa: E402
from bark_core.models.gpt import GPT, init_random_, preset_config  # noqa: E402
from bark_core.sampling import fast, graphs  # noqa: E402
from bark_core.sampling.batch import semantic_tokens_batch  # noqa: E402
from bark_core.sampling.eager import coarse_steps, coarse_tokens, semantic_input, semantic_tokens  # noqa: E402
from bark_core.sampling.static import DeviceSampler, NonFiniteLogitsError, StaticDecoder  # noqa: E402
from bark_core.voices import Voice  # noqa: E402

T0 = time.perf_counter()
SHAPES = {"tiny": dict(n_layer=2, n_head=2, n_embd=64), "small": dict(n_layer=12, n_head=12, n_embd=768),
          "large": dict(n_layer=24, n_head=16, n_embd=1024)}
SECTIONS = "ABCDSFGPT"


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def first_diff(a: Any, b: Any) -> int | None:
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    n = min(len(a), len(b))
    idx = np.flatnonzero(a[:n] != b[:n])
    return int(idx[0]) if len(idx) else (None if len(a) == len(b) else n)


class Check:
    def __init__(self, device: torch.device, smoke: bool, size: str, seed: int):
        self.device, self.smoke, self.size, self.seed = device, smoke, size, seed
        self.cuda = device.type == "cuda"
        self.checks: dict[str, dict] = {}
        self.info: dict[str, Any] = {}
        self.rng = np.random.default_rng(seed)
        self.steps = 24 if smoke else 200
        self.big = 3 if smoke else 8  # the larger batch
        self.texts = [self.rng.integers(C.TEXT_ENCODING_OFFSET, C.TEXT_ENCODING_OFFSET + 20_000, int(n))
                      for n in self.rng.integers(20, 120, 8)]
        # 25 semantic tokens: 74 coarse steps (2 windows of 60); 40: 120 steps
        self.sems = [self.rng.integers(0, C.SEMANTIC_VOCAB_SIZE, 25 if smoke else 40) for _ in range(8)]
        self.voices = [self.voice(100), self.voice(60)]  # different histories: row 2 is left-padded
        self.padded = [self.sems[2], self.sems[3][: len(self.sems[3]) * 3 // 4]]  # rows end at different steps

    # -- bookkeeping ---------------------------------------------------------------------------------
    def check(self, name: str, ok: bool, required: bool = True, **detail: Any) -> None:
        self.checks[name] = {"ok": bool(ok), "required": required, **detail}
        log(f"{'ok  ' if ok else ('FAIL' if required else 'note')} {name} {json.dumps(detail, default=str)[:300]}")

    def run(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            self.check(name, False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-2000:])

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def gen(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(int(seed))

    # -- models ----------------------------------------------------------------------------------------
    def build(self, stage: str, seed: int, dtype: torch.dtype) -> GPT:
        """Random weights at the shape, with sharper attention so a wrong key, slot or mask shows."""
        cfg = preset_config(stage, "large", **SHAPES[self.size])
        model = init_random_(GPT(cfg), torch.Generator().manual_seed(seed))
        with torch.no_grad():
            for blk in model.transformer.h:
                blk.attn.c_attn.weight[: 2 * cfg.n_embd].mul_(2.5)
        return model.to(self.device, dtype).eval()

    # -- runs --------------------------------------------------------------------------------------------
    def sem_fast(self, model: GPT, n: int, seeds: list[int], temp: float | None, steps: int | None = None,
                 **kw: Any) -> list[np.ndarray]:
        kw.setdefault("allow_early_stop", False)
        return fast.semantic_tokens_fast(model, self.texts[:n], [None] * n, [self.gen(s) for s in seeds], temp=temp,
                                         max_steps=steps or self.steps, **kw)

    def sem_eager(self, model: GPT, i: int, seed: int, temp: float | None, steps: int | None = None,
                  **kw: Any) -> np.ndarray:
        kw.setdefault("allow_early_stop", False)
        return semantic_tokens(model, self.texts[i], None, generator=self.gen(seed), temp=temp,
                               max_steps=steps or self.steps, **kw)

    def voice(self, n_sem: int) -> Voice:
        frames = int(round(n_sem * C.SEMANTIC_TO_COARSE_RATIO / 2))
        fine = self.rng.integers(0, C.CODEBOOK_SIZE, (C.N_FINE_CODEBOOKS, frames))
        return Voice(semantic=self.rng.integers(0, C.SEMANTIC_VOCAB_SIZE, n_sem), coarse=fine[:2], fine=fine,
                     name=f"h{n_sem}", source={"kind": "test"})

    @contextlib.contextmanager
    def graph_mode(self, mode: str, *models: GPT) -> Iterator[dict[str, int]]:
        """'real': CUDA graphs (the library default on CUDA); 'emulated': every bucket's graph body run
        eagerly instead of replayed; 'off': the plain eager step. Yields a capture counter."""
        real = graphs.capture_step
        count = {"captures": 0}

        def counted(body, device, reset, pool=None, warmup=2):
            count["captures"] += 1
            if mode == "emulated":
                reset()
                return body
            return real(body, device, reset, pool, warmup)

        graphs.capture_step = counted
        for m in models:
            fast.release(m)
        try:
            yield count
        finally:
            graphs.capture_step = real
            for m in models:
                fast.release(m)

    @staticmethod
    def graph_flag(mode: str) -> bool | None:  # None: the library default, graphs on CUDA
        return {"off": False, "emulated": True}.get(mode)

    @contextlib.contextmanager
    def no_tf32(self) -> Iterator[None]:
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    # -- A: logic in fp32 --------------------------------------------------------------------------------
    def section_a(self, text32: GPT, coarse32: GPT) -> None:
        mode = "emulated" if self.smoke else "real"
        flag = self.graph_flag(mode)
        with self.no_tf32(), self.graph_mode(mode, text32, coarse32):
            want = [self.sem_eager(text32, i, i, None) for i in range(3)]
            got = self.sem_fast(text32, 1, [0], None, graph=flag)[0]
            self.check("A_semantic_greedy_b1_fp32", first_diff(got, want[0]) is None,
                       first_divergence=first_diff(got, want[0]), n=len(want[0]),
                       distinct_tokens=len(set(want[0].tolist())))
            got3 = self.sem_fast(text32, 3, [0, 1, 2], None, graph=flag)
            diffs = [first_diff(g, w) for g, w in zip(got3, want, strict=True)]
            self.check("A_semantic_greedy_b3_fp32", all(d is None for d in diffs), first_divergence=diffs)

            def coarse_pair(name: str, sems: list, voices: list, **kw: Any) -> None:
                want = [coarse_tokens(coarse32, s, v, generator=self.gen(i), temp=None, **kw)
                        for i, (s, v) in enumerate(zip(sems, voices, strict=True))]
                got = fast.coarse_tokens_fast(coarse32, sems, voices, [self.gen(i) for i in range(len(sems))],
                                              temp=None, graph=flag, **kw)
                diffs = [first_diff(g.T, w.T) for g, w in zip(got, want, strict=True)]
                self.check(name, all(d is None for d in diffs), first_divergence=diffs,
                           shapes=[list(w.shape) for w in want])

            coarse_pair("A_coarse_greedy_b1_2windows_fp32", self.sems[:1], [None])
            coarse_pair("A_coarse_greedy_b1_window37_fp32", self.sems[1:2], [None], sliding_window_len=37)
            coarse_pair("A_coarse_greedy_b2_padded_fp32", self.padded, self.voices)
            free = self.sem_eager(text32, 0, 0, None, steps=30)
            head = text32.lm_head.weight
            with torch.no_grad():
                saved = head[C.SEMANTIC_EOS_TOKEN].clone()
                head[C.SEMANTIC_EOS_TOKEN] = head[int(free[7])] * 1.5
            try:
                fast.release(text32)
                want = [self.sem_eager(text32, i, i, None, steps=64, allow_early_stop=True) for i in range(3)]
                got = self.sem_fast(text32, 3, [0, 1, 2], None, steps=64, allow_early_stop=True, graph=flag)
            finally:
                with torch.no_grad():
                    head[C.SEMANTIC_EOS_TOKEN] = saved
            diffs = [first_diff(g, w) for g, w in zip(got, want, strict=True)]
            self.check("A_eos_stop_fp32", all(d is None for d in diffs) and len(want[0]) < 30,
                       lengths=[len(w) for w in want], first_divergence=diffs)

    # -- B: graph replay vs the same body run eagerly ------------------------------------------------------
    def section_b(self, text: GPT, coarse: GPT) -> None:
        modes = ("emulated", "off") if self.smoke else ("real", "emulated")
        tag = "fp32_bucket_bodies_vs_eager_step" if self.smoke else "bf16_graph_vs_same_body_eager"
        cases = {
            "semantic_greedy_b1": lambda f: self.sem_fast(text, 1, [0], None, graph=f),
            "semantic_sampled_b1_topk_topp": lambda f: self.sem_fast(text, 1, [5], 0.8, graph=f, top_k=50, top_p=0.95),
            f"semantic_sampled_b{self.big}": lambda f: self.sem_fast(text, self.big, list(range(10, 10 + self.big)),
                                                                     0.7, graph=f),
            "coarse_greedy_b2_padded": lambda f: fast.coarse_tokens_fast(
                coarse, self.padded, self.voices, [self.gen(0), self.gen(1)], temp=None, graph=f),
            "coarse_sampled_b1": lambda f: fast.coarse_tokens_fast(coarse, self.sems[4:5], [None], [self.gen(7)],
                                                                   temp=0.7, graph=f),
        }
        with self.no_tf32() if self.smoke else contextlib.nullcontext():
            for name, run in cases.items():
                outs = []
                for mode in modes:
                    with self.graph_mode(mode, text, coarse):
                        outs.append(run(self.graph_flag(mode)))
                diffs = [first_diff(a, b) for a, b in zip(*outs, strict=True)]
                self.check(f"B_{name}_{tag}", all(d is None for d in diffs), first_divergence=diffs)

    # -- C: bf16 fidelity of the fast step ---------------------------------------------------------------
    @torch.inference_mode()
    def probe_fast(self, model: GPT, x: torch.Tensor, forced: torch.Tensor, merge: bool) -> torch.Tensor:
        n = forced.shape[1]

        def emit(ids: torch.Tensor, probs: torch.Tensor | None, dec: StaticDecoder) -> torch.Tensor:
            return dec.state["forced"].index_select(1, dec.out_idx.clamp(max=n - 1))[:, 0]

        sampler = DeviceSampler([self.gen(0)], model.lm_head.weight.shape[0], self.device, None, None, None)
        dec = StaticDecoder(model, 1, sampler, lambda logits, dec: logits, emit, n,
                            None if not self.smoke else True)
        dec.state["forced"] = forced.to(self.device)
        dec.ready()
        dec.start(x.to(self.device), merge_context=merge)
        rows = [dec.logits[0].clone()]
        for _ in range(n - 1):
            dec.step()
            rows.append(dec.logits[0].clone())
        return torch.stack(rows)

    @torch.inference_mode()
    def probe_eager(self, model: GPT, x: torch.Tensor, forced: torch.Tensor, merge: bool) -> torch.Tensor:
        cache = model.new_cache(1)
        rows = [model(x.to(self.device), cache, merge_context=merge)[0, -1].float()]
        for j in range(forced.shape[1] - 1):
            rows.append(model(forced[:, j:j + 1].to(self.device), cache)[0, -1].float())
        return torch.stack(rows)

    def section_c(self, lo: GPT, ref: GPT) -> None:
        with self.graph_mode("emulated" if self.smoke else "real", lo):
            tokens = self.sem_eager(lo, 0, 0, None)
            x = torch.from_numpy(semantic_input(self.texts[0], None))[None]
            forced = torch.as_tensor(tokens)[None]
            P = self.probe_fast(lo, x, forced, True)[:, : C.SEMANTIC_VOCAB_SIZE]
            E = self.probe_eager(lo, x, forced, True)[:, : C.SEMANTIC_VOCAB_SIZE]
            with self.no_tf32():
                R = self.probe_eager(ref, x, forced, True)[:, : C.SEMANTIC_VOCAB_SIZE]
        err_fast, err_eager = (P - R).abs().amax(1), (E - R).abs().amax(1)
        ok = (float(err_fast.max()) <= max(2 * float(err_eager.max()), 1e-3)
              and float(err_fast.mean()) <= max(2 * float(err_eager.mean()), 1e-4)
              and float(err_fast.max()) <= 0.25 * float(R.std()))
        stats = dict(logit_std=R.std(), max_err_fast=err_fast.max(), max_err_eager=err_eager.max(),
                     mean_err_fast=err_fast.mean(), mean_err_eager=err_eager.mean(),
                     argmax_agree_fast_eager=(P.argmax(1) == E.argmax(1)).float().mean())
        self.check("C_semantic_logits_fast_as_close_to_fp32_as_eager", ok, steps=int(P.shape[0]),
                   **{k: round(float(v), 5) for k, v in stats.items()})
        d = first_diff(self.sem_fast(lo, 1, [0], None)[0], tokens)
        self.check("C_info_semantic_greedy_fast_vs_eager_tokens", d is None, required=False, first_divergence=d,
                   n=len(tokens), note="bf16: equal until an argmax meets a rounding near-tie")

    # -- D: sampling on the device -----------------------------------------------------------------------
    def section_d(self, text: GPT, coarse: GPT) -> None:
        a, b, c = (self.sem_fast(text, 1, [s], 0.7)[0] for s in (3, 3, 4))
        self.check("D_semantic_same_seed_repeats", first_diff(a, b) is None, first_divergence=first_diff(a, b))
        self.check("D_semantic_other_seed_differs", first_diff(a, c) is not None)
        k1, k2 = (self.sem_fast(text, 1, [3], 0.9, top_k=40, top_p=0.9)[0] for _ in range(2))
        self.check("D_semantic_topk_topp_repeats", first_diff(k1, k2) is None)
        seeds = list(range(20, 20 + self.big))
        m1, m2 = self.sem_fast(text, self.big, seeds, 0.7), self.sem_fast(text, self.big, seeds, 0.7)
        same = all(first_diff(x, y) is None for x, y in zip(m1, m2, strict=True))
        self.check(f"D_semantic_b{self.big}_repeats", same)
        e = self.sem_eager(text, 0, 3, 0.7)
        self.check("D_info_sampled_fast_vs_eager_same_seed", first_diff(a, e) is None, required=False,
                   first_divergence=first_diff(a, e), n=len(e))
        c1, c2 = (fast.coarse_tokens_fast(coarse, self.sems[5:6], [None], [self.gen(9)], temp=0.7)[0] for _ in "ab")
        self.check("D_coarse_same_seed_repeats", np.array_equal(c1, c2))

    # -- S: settings are device scalars ------------------------------------------------------------------
    def section_s(self, text: GPT) -> None:
        mode = "emulated" if self.smoke else "real"
        with self.graph_mode(mode, text) as count:
            held, same, equal = None, [], []
            for temp, top_p, eos in ((0.7, 0.9, 0.2), (1.2, 0.5, 0.5), (0.5, 0.99, 0.05)):
                kw = dict(top_p=top_p, min_eos_p=eos, allow_early_stop=True, steps=self.steps)
                got = self.sem_fast(text, 1, [11], temp, graph=self.graph_flag(mode), **kw)[0]
                dec = text.__dict__[fast._DECODER_ATTR][1]
                held = held or dec
                same.append(dec is held)
                want = self.sem_eager(text, 0, 11, temp, **kw)
                equal.append(first_diff(got, want))
        per_build = len(graphs.bucket_sizes(text.config.block_size))
        self.check("S_settings_change_without_rebuild", all(same) and count["captures"] == per_build,
                   captures=count["captures"], same_decoder=same)
        self.check("S_info_settings_read_from_device_scalars_vs_eager", all(d is None for d in equal),
                   required=self.smoke, first_divergence=equal)

    # -- F: self-check, NaN ----------------------------------------------------------------------------
    def section_f(self, text: GPT) -> None:
        mode = "emulated" if self.smoke else "real"
        with self.graph_mode(mode, text):
            text.__dict__.pop(graphs._VERDICTS, None)
            graphs.set_self_check(False)
            try:
                self.sem_fast(text, 1, [0], None, steps=8, graph=self.graph_flag(mode))  # capture only
            finally:
                graphs.set_self_check(None)
            dec = text.__dict__[fast._DECODER_ATTR][1]
            self.sync()
            t = time.perf_counter()
            with torch.inference_mode():
                dec._self_check()
            self.sync()
            ms = (time.perf_counter() - t) * 1e3
            verdict = graphs.verdict(text, dec.key)
        self.check("F_self_check_passes", bool(verdict and verdict[0]), ms=round(ms, 1),
                   detail=verdict[1] if verdict else None)
        w = text.transformer.ln_f.weight  # NaN in, as an fp16 overflow gives: the take must fail, not draw
        saved = w.detach().clone()
        with torch.no_grad():
            w[0] = float("nan")
        try:
            self.sem_fast(text, 2, [0, 1], 0.7, steps=40)
            raised = False
        except NonFiniteLogitsError:
            raised = True
        finally:
            with torch.no_grad():
                w.copy_(saved)
            fast.release(text)
        self.check("F_nan_logits_raise", raised)

    # -- G: a model on the non-current GPU ---------------------------------------------------------------
    def section_g(self) -> None:
        if not self.cuda or torch.cuda.device_count() < 2:
            self.info["G"] = "skipped: fewer than 2 GPUs"
            return
        other = torch.device("cuda", (torch.cuda.current_device() + 1) % torch.cuda.device_count())
        tiny = GPT(preset_config("text", "large", n_layer=2, n_head=2, n_embd=64)).to(other).eval()
        kw = dict(temp=None, allow_early_stop=False, max_steps=80)
        want = semantic_tokens(tiny, self.texts[0], None, generator=torch.Generator(other).manual_seed(0), **kw)
        got = fast.semantic_tokens_fast(tiny, self.texts[:1], [None], [torch.Generator(other).manual_seed(0)], **kw)[0]
        n_graphs = len(tiny.__dict__[fast._DECODER_ATTR][1].graphs)
        self.check("G_model_on_non_current_gpu", first_diff(got, want) is None and n_graphs > 0, graphs=n_graphs,
                   model_device=str(other), current=torch.cuda.current_device(), first_divergence=first_diff(got, want))

    # -- P: precision drift ----------------------------------------------------------------------------
    def section_p(self, ref: GPT) -> None:
        """bf16 weights and fp32-under-bf16-autocast against fp32: first-step logits, greedy divergence."""
        out: dict[str, Any] = {}
        steps = self.steps
        with self.no_tf32():
            want = self.sem_eager(ref, 0, 0, None, steps=steps)
            x = torch.from_numpy(semantic_input(self.texts[0], None))[None].to(self.device)
            with torch.inference_mode():
                first_ref = ref(x, ref.new_cache(1), merge_context=True)[0, -1].float()
        for name in ("bf16", "autocast"):
            prec = resolve_precision(name, str(self.device))
            model = copy.deepcopy(ref).to(prec.weights) if prec.autocast is None else ref
            with prec.context(self.device), torch.inference_mode():
                first = model(x, model.new_cache(1), merge_context=True)[0, -1].float()
                got = semantic_tokens(model, self.texts[0], None, generator=self.gen(0), temp=None,
                                      allow_early_stop=False, max_steps=steps)
            out[name] = dict(first_step_max_abs_err=round(float((first - first_ref).abs().max()), 5),
                             first_step_err_in_std=round(float((first - first_ref).abs().max() / first_ref.std()), 5),
                             greedy_diverges_at=first_diff(got, want), steps=steps)
            del model
        self.info["P_precision_drift_vs_fp32"] = out
        log(f"P {json.dumps(out)}")

    # -- T: timing and memory ----------------------------------------------------------------------------
    def section_t(self, text: GPT, coarse: GPT) -> None:
        timing: dict[str, Any] = {}
        n1, n2 = (8, 24) if self.smoke else (64, 320)

        def wall(fn: Callable[[], Any]) -> float:
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            return time.perf_counter() - t

        for b in (1, self.big):
            for path in ("fast", "eager"):
                def run(n: int, b: int = b, path: str = path) -> Any:
                    # one max_steps for both lengths (one decoder, captured once); the duration cap cuts
                    kw = dict(temp=0.7, allow_early_stop=False, max_gen_duration_s=(n - 0.5) / C.SEMANTIC_RATE_HZ)
                    if path == "fast":
                        return self.sem_fast(text, b, list(range(b)), steps=n2, **kw)
                    if b == 1:
                        return self.sem_eager(text, 0, 0, steps=n2, **kw)
                    return semantic_tokens_batch(text, self.texts[:b], [None] * b, [self.gen(i) for i in range(b)],
                                                 max_steps=n2, **kw)

                run(n1)  # warm-up (and, for fast, the captures and the self-check)
                if self.cuda:
                    torch.cuda.reset_peak_memory_stats(self.device)
                    base = torch.cuda.memory_allocated(self.device)
                ms = (wall(lambda run=run: run(n2)) - wall(lambda run=run: run(n1))) / (n2 - n1) * 1e3
                row = dict(ms_per_step=round(ms, 3), ms_per_token=round(ms / b, 4))
                if self.cuda:
                    peak = torch.cuda.max_memory_allocated(self.device)
                    row.update(peak_over_base_gb=round((peak - base) / 2**30, 3),
                               retained_gb=round((torch.cuda.memory_allocated(self.device) - base) / 2**30, 3))
                timing[f"semantic_{path}_b{b}"] = row
            f, e = timing[f"semantic_fast_b{b}"], timing[f"semantic_eager_b{b}"]
            timing[f"semantic_speedup_b{b}"] = round(e["ms_per_token"] / max(f["ms_per_token"], 1e-9), 2)
        t = wall(lambda: fast.coarse_tokens_fast(coarse, self.sems[:1], [None], [self.gen(0)], temp=0.7))
        timing["coarse_fast_b1_ms_per_step"] = round(t / coarse_steps(len(self.sems[0])) * 1e3, 3)
        if self.cuda:
            timing["max_memory_allocated_gb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3)
        else:
            timing["note"] = "CPU: tiny shapes and a shared machine; these figures only show the section runs"
        self.info["T_timing"] = timing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="CPU, tiny shape, short runs (CI)")
    ap.add_argument("--device", default=None, help="default cuda (cpu with --cpu-smoke)")
    ap.add_argument("--size", choices=sorted(SHAPES), default=None, help="model shape (default large; tiny for smoke)")
    ap.add_argument("--only", default=SECTIONS, help=f"sections to run, e.g. 'ABP' (default {SECTIONS})")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=None, help="semantic steps per run (default 200; 24 for smoke)")
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.cpu_smoke else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"script": "cuda_check", "passed": False, "exit_code": 2, "error": "no CUDA device"}))
        return 2
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    size = args.size or ("tiny" if args.cpu_smoke else "large")
    ck = Check(device, args.cpu_smoke or device.type != "cuda", size, args.seed)
    if args.steps:
        ck.steps = args.steps
    if ck.smoke and device.type == "cuda":
        ck.smoke = False
    env: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                           "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, capability=f"{props.major}.{props.minor}", gpus=torch.cuda.device_count(),
                   cuda=torch.version.cuda)
    low = torch.float32 if ck.smoke else torch.bfloat16
    sections = set(args.only.upper())
    log(f"cuda_check: {env} size={size} low={low} sections={''.join(sorted(sections))}")
    text32 = ck.build("text", args.seed, torch.float32)
    coarse32 = ck.build("coarse", args.seed + 1, torch.float32) if sections & set("ABDT") else text32
    text_lo = text32 if low == torch.float32 else copy.deepcopy(text32).to(low)
    coarse_lo = coarse32 if low == torch.float32 else copy.deepcopy(coarse32).to(low)
    plan = [("A", lambda: ck.section_a(text32, coarse32)), ("B", lambda: ck.section_b(text_lo, coarse_lo)),
            ("C", lambda: ck.section_c(text_lo, text32)), ("D", lambda: ck.section_d(text_lo, coarse_lo)),
            ("S", lambda: ck.section_s(text_lo)), ("F", lambda: ck.section_f(text_lo)), ("G", ck.section_g),
            ("P", lambda: ck.section_p(text32)), ("T", lambda: ck.section_t(text_lo, coarse_lo))]
    with warnings.catch_warnings(record=True) as caught:  # a fallback would make every graph check vacuous
        warnings.simplefilter("always", graphs.GraphFallbackWarning)
        for name, fn in plan:
            if name in sections:
                ck.run(f"{name}_section", fn)
                for m in (text32, coarse32, text_lo, coarse_lo):
                    fast.release(m)
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, graphs.GraphFallbackWarning)]
    ck.check("F_no_graph_fallback", not fallbacks, warnings=fallbacks[:3])
    failures = [k for k, v in ck.checks.items() if v["required"] and not v["ok"]]
    code = 1 if failures else 0
    result = {"script": "cuda_check", "mode": "cpu-smoke" if args.cpu_smoke else str(device.type), "size": size,
              "low_dtype": str(low), "passed": code == 0, "exit_code": code, "failures": failures,
              "elapsed_s": round(time.perf_counter() - T0, 1), "env": env, "checks": ck.checks, "info": ck.info}
    line = json.dumps(result, default=str, separators=(",", ":"))
    if args.out:
        Path(args.out).write_text(line + "\n")
    print(line, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
