"""How far bf16 and int8 weights move a GPT's logits from fp32's, at Bark's real shapes, on random weights.

For each size and stage: one random fp32 model (GPT-2 init), a bf16 copy and an int8 copy (weight-only,
per output channel). A random prompt is prefilled, then 100 teacher-forced steps feed every copy the
fp32 model's greedy tokens; each step's logits are compared with fp32's (max and mean absolute error,
in standard deviations of that step's fp32 logits). Then each copy decodes greedily on its own, and
the first step whose token differs from fp32's is reported (none: identical for all steps).

    python benchmarks/precision_drift.py                      # small and large, text and coarse, CPU
    python benchmarks/precision_drift.py --size small --stage text --steps 20   # quick look
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform

import torch

from bark_core.models.gpt import GPT, init_random_, preset_config
from bark_core.models.quant import quantize_


def _copies(model: GPT) -> dict[str, GPT]:
    return {"bf16": copy.deepcopy(model).to(torch.bfloat16),
            "int8": quantize_(copy.deepcopy(model)).to(torch.bfloat16)}


@torch.inference_mode()
def drift(stage: str, size: str, steps: int, prompt_len: int, seed: int) -> list[dict]:
    cfg = preset_config(stage, size)
    gen = torch.Generator().manual_seed(seed)
    ref = init_random_(GPT(cfg).eval(), gen)
    others = _copies(ref)
    prompt = torch.randint(0, min(cfg.input_vocab_size, 10_000), (1, prompt_len), generator=gen)
    # teacher forcing: every copy is fed fp32's greedy tokens
    caches = {name: m.new_cache(1, prompt_len + steps + 1) for name, m in {"fp32": ref, **others}.items()}
    logits = {name: m(prompt, caches[name])[:, -1].float() for name, m in {"fp32": ref, **others}.items()}
    errs: dict[str, list[tuple[float, float]]] = {name: [] for name in others}
    for _ in range(steps):
        scale = logits["fp32"].std()
        for name in others:
            d = (logits[name] - logits["fp32"]).abs() / scale
            errs[name].append((float(d.max()), float(d.mean())))
        tok = logits["fp32"].argmax(-1, keepdim=True)
        logits = {name: m(tok, caches[name])[:, -1].float() for name, m in {"fp32": ref, **others}.items()}
    # free running greedy decoding: where does each copy first pick another token?
    runs = {}
    for name, m in {"fp32": ref, **others}.items():
        cache = m.new_cache(1, prompt_len + steps + 1)
        out = m(prompt, cache)[:, -1]
        toks = []
        for _ in range(steps):
            tok = out.float().argmax(-1, keepdim=True)
            toks.append(int(tok))
            out = m(tok, cache)[:, -1]
        runs[name] = toks
    rows = []
    for name in others:
        first = next((i for i, (a, b) in enumerate(zip(runs[name], runs["fp32"], strict=True)) if a != b), None)
        rows.append({"stage": stage, "size": size, "precision": name, "steps": steps,
                     "max_err_std": max(e[0] for e in errs[name]),
                     "mean_err_std": sum(e[1] for e in errs[name]) / steps,
                     "first_greedy_divergence": first})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", nargs="+", default=["small", "large"], choices=["small", "large"])
    ap.add_argument("--stage", nargs="+", default=["text", "coarse"], choices=["text", "coarse"])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)
    rows = []
    for size in args.size:
        for stage in args.stage:
            rows += drift(stage, size, args.steps, args.prompt, args.seed)
            print(json.dumps(rows[-2:]), flush=True)
    print(f"\n{datetime.date.today()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.steps} teacher-forced steps after a {args.prompt}-token prompt")
    print("| size | stage | precision | max error (std of fp32 logits) | mean error | first greedy divergence |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        div = "none" if r["first_greedy_divergence"] is None else f"step {r['first_greedy_divergence']}"
        print(f"| {r['size']} | {r['stage']} | {r['precision']} | {r['max_err_std']:.3f} | {r['mean_err_std']:.4f} | "
              f"{div} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
