"""Speed of the whole pipeline, stage by stage: bark_core's fast and eager decoders against Suno's
``bark==0.1.5`` and transformers' ``BarkModel``, on the same random weights, in one run on one machine.

All three load one set of weights: a random ``BarkModel`` at the real size is saved in transformers
format, bark_core loads that folder, and the same tensors are written as Suno ``.pt`` files for
Suno's own loader. Every run generates a fixed number of semantic tokens (early stop off), so the
same amount of audio comes out of each. Warm timings follow a short warm-up run (which also records
the fast decoder's CUDA graphs); cold timings run in a fresh process, from weights on disk to the
first audio. Peak memory is the CUDA allocator's peak (on a GPU).

    python benchmarks/speed.py --size small --device cpu --tokens 256            # the README's CPU table
    python benchmarks/speed.py --size large --device cuda --batch 1 8 --cold      # the GPU table
    python benchmarks/speed.py --size tiny --tokens 16 --impl ours-fast suno      # smoke test (CI)
    python benchmarks/speed.py --size tiny --impl ours-eager --threads 1 2        # bark-say's thread choice
    python benchmarks/speed.py --size small --device cpu --tokens 256 --cold \
        --impl ours-fast@bf16 ours-fast@int8 ours-stream@int8 suno               # the README's int8/stream table

``ours-stream`` runs :func:`bark_core.generate_stream` (chunks of 1 s) and reports the time to its
first chunk ("first audio"); cold runs report the peak resident memory of their fresh process.

Reference implementations are test extras (``pip install -e '.[test]'``); an implementation that
cannot be imported is reported and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # reference.py: the torchaudio stub the references need

from bark_core import constants as C  # noqa: E402

SIZES = {"tiny": dict(num_layers=2, num_heads=2, hidden_size=64), "small": dict(num_layers=12, num_heads=12,
         hidden_size=768), "large": dict(num_layers=24, num_heads=16, hidden_size=1024)}
STAGES = ("semantic", "coarse", "fine", "decode")
IMPLS = ("ours-fast", "ours-eager", "ours-fast-offload", "ours-stream", "suno", "transformers")
STREAM_CHUNK_S = 1.0  # ours-stream: seconds of audio per chunk
TEXT = "Hello, my name is Suno. And, uh, I like pizza. [laughs] But I also have other interests such as playing"


# --------------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------------

def write_weights(root: Path, size: str, seed: int = 0) -> dict[str, Path]:
    """One random Bark at ``size`` in transformers format, Suno's format, plus vocab and codec files."""
    from transformers import BarkCoarseConfig, BarkConfig, BarkFineConfig, BarkModel, BarkSemanticConfig, EncodecConfig

    from bark_core.models.codec import write_random_codec
    from bark_core.models.gpt import build_model
    from bark_core.models.hf_format import load_hf_stage
    from bark_core.models.suno import save_suno_checkpoint
    from bark_core.models.tiny_vocab import write_tiny_vocab

    paths = {"hf": root / "hf", "suno": root / "suno", "vocab": root / "tokenizer", "codec": root / "codec.th"}
    if (root / "done").is_file():
        return paths
    shape = dict(**SIZES[size], bias=False, block_size=1024, dropout=0.0)
    torch.manual_seed(seed)
    config = BarkConfig(
        semantic_config=BarkSemanticConfig(input_vocab_size=C.TEXT_INPUT_VOCAB, output_vocab_size=C.TEXT_OUTPUT_VOCAB,
                                           **shape).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(input_vocab_size=C.COARSE_VOCAB, output_vocab_size=C.COARSE_VOCAB,
                                                 **shape).to_dict(),
        fine_acoustics_config=BarkFineConfig(input_vocab_size=C.FINE_VOCAB, output_vocab_size=C.FINE_VOCAB,
                                             **shape).to_dict(),
        codec_config=EncodecConfig().to_dict())
    BarkModel(config).eval().save_pretrained(paths["hf"])
    paths["suno"].mkdir(parents=True, exist_ok=True)
    for stage in ("text", "coarse", "fine"):
        cfg, sd, _ = load_hf_stage(paths["hf"], stage)
        model = build_model(stage, cfg)
        model.load_state_dict(sd)
        save_suno_checkpoint(paths["suno"] / f"{stage}.pt", model, cfg, untrained=True)
    write_tiny_vocab(paths["vocab"])
    write_random_codec(paths["codec"], seed=seed)
    (root / "done").write_text("ok\n")
    return paths


# --------------------------------------------------------------------------------------------------
# timing helpers
# --------------------------------------------------------------------------------------------------

def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Clock:
    """Per-stage wall time, synchronising the GPU at every boundary."""

    def __init__(self, device: str):
        self.device, self.times = device, dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        sync(self.device)
        t0 = time.perf_counter()
        yield
        sync(self.device)
        self.times[name] += time.perf_counter() - t0


def wrap_timed(obj: Any, attr: str, clocks: dict[str, Clock], stage: str) -> None:
    """Time every call of ``obj.attr`` into ``clocks['now']`` (the clock of the current run)."""
    fn = getattr(obj, attr)

    def timed(*a: Any, **k: Any) -> Any:
        with clocks["now"].stage(stage):
            return fn(*a, **k)

    setattr(obj, attr, timed)


def duration_for(tokens: int) -> float:
    """``max_gen_duration_s`` at which Suno's loop (and ours) stops after exactly ``tokens`` tokens."""
    return (tokens - 0.5) / C.SEMANTIC_RATE_HZ


# --------------------------------------------------------------------------------------------------
# implementations: each returns run(batch, tokens, clock) -> list of audio arrays
# --------------------------------------------------------------------------------------------------

def setup_ours(paths: dict[str, Path], device: str, dtype: str, decoder: str, offload: bool = False) -> Callable:
    from bark_core import BarkModels, decode, generate_coarse, generate_fine, generate_semantic
    from bark_core.stages.batch import generate_batch

    models = BarkModels(paths["hf"], device=device, dtype=dtype, decoder=decoder, offload=offload,
                        tokenizer=paths["vocab"], codec_checkpoint=paths["codec"]).preload()

    def run(batch: int, tokens: int, clock: Clock) -> list[np.ndarray]:
        kw = dict(allow_early_stop=False, max_gen_duration_s=duration_for(tokens))
        if batch == 1:
            with clock.stage("semantic"):
                sem = generate_semantic(models, TEXT, seed=1, **kw)
            with clock.stage("coarse"):
                coarse = generate_coarse(models, sem, seed=2)
            with clock.stage("fine"):
                fine = generate_fine(models, coarse, seed=3)
            with clock.stage("decode"):
                audio = decode(models, fine)
            return [audio.samples]
        with clock.stage("semantic"):  # generate_batch runs the stages back to back: one total
            takes = generate_batch(models, [TEXT] * batch, seeds=list(range(1, batch + 1)), **kw)
        return [t.audio.samples for t in takes]

    return run


def setup_ours_stream(paths: dict[str, Path], device: str, dtype: str) -> Callable:
    """generate_stream on the fast decoder: total time, and the time to the first chunk."""
    from bark_core import BarkModels, generate_stream

    models = BarkModels(paths["hf"], device=device, dtype=dtype, decoder="fast", tokenizer=paths["vocab"],
                        codec_checkpoint=paths["codec"]).preload()

    def run(batch: int, tokens: int, clock: Clock) -> list[np.ndarray]:
        if batch != 1:
            raise ValueError("ours-stream runs batch 1 only")
        kw = dict(allow_early_stop=False, max_gen_duration_s=duration_for(tokens))
        t0 = time.perf_counter()
        chunks = []
        for chunk in generate_stream(models, TEXT, seed=1, chunk_s=STREAM_CHUNK_S, **kw):
            if not chunks:
                sync(device)
                clock.first_audio_s = time.perf_counter() - t0
            chunks.append(chunk.samples)
        return [np.concatenate(chunks)]

    return run


def _suno_module() -> Any:
    from reference import stub_broken_torchaudio

    stub_broken_torchaudio()
    import bark.generation as suno  # the reference, imported only here (test extra)

    return suno


def setup_suno(paths: dict[str, Path], device: str, dtype: str) -> Callable:
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    from bark_core.models.codec import load_codec

    suno = _suno_module()
    vocab = str(paths["vocab"] / "vocab.txt")
    suno.BertTokenizer.from_pretrained = classmethod(
        lambda cls, *a, **k: BertTokenizerLegacy(vocab_file=vocab, do_lower_case=False))
    real_load = torch.load
    torch.load = lambda *a, **k: real_load(*a, **{**k, "weights_only": False})  # our own file: Suno's loader
    try:
        loaded = {t: suno._load_model(str(paths["suno"] / f"{t}.pt"), device, model_type=t)
                  for t in ("text", "coarse", "fine")}
    finally:
        torch.load = real_load
    loaded["codec"] = load_codec(device=device, checkpoint=paths["codec"])
    suno.models.clear()
    suno.models.update(loaded)

    def run(batch: int, tokens: int, clock: Clock) -> list[np.ndarray]:
        out = []
        for _ in range(batch):  # Suno's code has no batching: one text after the other
            with clock.stage("semantic"):
                sem = suno.generate_text_semantic(TEXT, allow_early_stop=False, use_kv_caching=True, silent=True,
                                                  max_gen_duration_s=duration_for(tokens))
            with clock.stage("coarse"):
                coarse = suno.generate_coarse(sem, use_kv_caching=True, silent=True)
            with clock.stage("fine"):
                fine = suno.generate_fine(coarse, temp=0.5, silent=True)
            with clock.stage("decode"):
                out.append(suno.codec_decode(fine))
        return out

    return run


def setup_transformers(paths: dict[str, Path], device: str, dtype: str) -> Callable:
    from reference import stub_broken_torchaudio

    stub_broken_torchaudio()
    from transformers import BarkModel

    from bark_core.models.device import resolve_dtype
    from bark_core.models.tokenizer import load_tokenizer

    torch_dtype = resolve_dtype(dtype, device)
    from transformers.models.bark.generation_configuration_bark import (
        BarkCoarseGenerationConfig,
        BarkFineGenerationConfig,
        BarkSemanticGenerationConfig,
    )

    model = BarkModel.from_pretrained(paths["hf"], dtype=torch_dtype).to(device).eval()
    # the hub repos ship these in generation_config.json (read back as plain dicts); defaults are Bark's constants
    gc = model.generation_config
    gc.semantic_config = BarkSemanticGenerationConfig().to_dict()
    gc.coarse_acoustics_config = BarkCoarseGenerationConfig().to_dict()
    gc.fine_acoustics_config = BarkFineGenerationConfig().to_dict()
    gc.sample_rate, gc.codebook_size = C.SAMPLE_RATE, C.CODEBOOK_SIZE
    tok = load_tokenizer(str(paths["vocab"]))
    ids = tok.encode(TEXT)[: C.TEXT_WINDOW]

    clocks: dict[str, Clock] = {}
    for attr, stage in (("semantic", "semantic"), ("coarse_acoustics", "coarse"), ("fine_acoustics", "fine")):
        wrap_timed(getattr(model, attr), "generate", clocks, stage)
    wrap_timed(model, "codec_decode", clocks, "decode")

    def run(batch: int, tokens: int, clock: Clock) -> list[np.ndarray]:
        clocks["now"] = clock
        input_ids = torch.zeros(batch, C.TEXT_WINDOW, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        input_ids[:, : len(ids)] = torch.tensor(ids)
        mask[:, : len(ids)] = 1
        with torch.inference_mode():
            audio = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), do_sample=True,
                                   semantic_max_new_tokens=tokens, semantic_min_new_tokens=tokens,
                                   semantic_min_eos_p=None)
        return [a.float().cpu().numpy() for a in audio]

    return run


def setup(impl: str, paths: dict[str, Path], device: str, dtype: str) -> Callable:
    """``impl`` may carry its own precision: ``ours-fast@bf16`` (else ``dtype``)."""
    impl, _, own = impl.partition("@")
    dtype = own or dtype
    if impl == "ours-fast":
        return setup_ours(paths, device, dtype, "fast")
    if impl == "ours-eager":
        return setup_ours(paths, device, dtype, "eager")
    if impl == "ours-fast-offload":
        return setup_ours(paths, device, dtype, "fast", offload=True)
    if impl == "ours-stream":
        return setup_ours_stream(paths, device, dtype)
    if impl == "suno":
        return setup_suno(paths, device, dtype)
    if impl == "transformers":
        return setup_transformers(paths, device, dtype)
    raise ValueError(f"unknown implementation {impl!r}; use one of {IMPLS}")


# --------------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------------

def measure(run: Callable, batch: int, tokens: int, device: str, warmup_tokens: int) -> dict[str, Any]:
    if warmup_tokens:
        run(batch, warmup_tokens, Clock(device))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    clock = Clock(device)
    t0 = time.perf_counter()
    audio = run(batch, tokens, clock)
    sync(device)
    total = time.perf_counter() - t0
    seconds = sum(len(np.asarray(a).reshape(-1)) for a in audio) / C.SAMPLE_RATE
    row = {"batch": batch, "total_s": total, "audio_s": seconds, "rtf": total / seconds if seconds else None,
           **{f"{k}_s": v for k, v in clock.times.items()}}
    if getattr(clock, "first_audio_s", None) is not None:
        row["first_audio_s"] = clock.first_audio_s
    if device.startswith("cuda"):
        row["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def _peak_rss_gb() -> float:
    """This process's own peak resident memory: VmHWM, which exec resets.

    Not ``getrusage().ru_maxrss``: Linux carries that across fork and exec, so a child started by this
    benchmark reported the parent's peak (the models it had loaded) whenever that was higher.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cold_child(args: argparse.Namespace) -> None:
    """In a fresh process: weights on disk -> first audio (imports excluded), printed as JSON."""
    paths = write_weights(Path(args.weights), args.size)
    import bark_core  # noqa: F401 - the import baseline: torch and bark_core, no weights yet

    base_gb = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    t0 = time.perf_counter()
    run = setup(args.impl[0], paths, args.device, args.dtype)
    loaded = time.perf_counter() - t0
    clock = Clock(args.device)
    audio = run(1, args.tokens, clock)
    sync(args.device)
    out = {"cold_s": time.perf_counter() - t0, "audio_s": len(audio[0]) / C.SAMPLE_RATE,
           "peak_rss_gb": _peak_rss_gb(), "base_rss_gb": base_gb}
    if getattr(clock, "first_audio_s", None) is not None:
        out["cold_first_audio_s"] = loaded + clock.first_audio_s
    print("COLD " + json.dumps(out))


def cold(impl: str, args: argparse.Namespace) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--_cold", "--impl", impl, "--size", args.size, "--device", args.device,
           "--dtype", args.dtype, "--tokens", str(args.tokens), "--weights", str(args.weights)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("COLD "):
            return json.loads(line[5:])
    print(f"  cold run of {impl} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


def table(rows: list[dict[str, Any]]) -> str:
    base = {(r["batch"], r.get("threads")): r["rtf"] for r in rows if r["impl"].startswith("suno") and r.get("rtf")}
    head = ("| implementation | batch | semantic s | coarse s | fine s | decode s | total s | audio s | RTF | "
            "× Suno | first audio s | peak GB | cold s | cold first audio s | cold peak RSS GB | over imports GB |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        name = r["impl"] if r.get("threads") is None else f"{r['impl']}, {r['threads']} thread(s)"
        if "error" in r:
            lines.append(f"| {name} | {r['batch']} | {r['error']} |" + " |" * 13)
            continue
        ref = base.get((r["batch"], r.get("threads"))) or base.get((1, r.get("threads")))
        speed = f"{ref / r['rtf']:.1f}" if ref and r.get("rtf") else "-"
        timed = any(r[f"{s}_s"] for s in STAGES[1:])  # ours in a batch runs the stages back to back
        stages = [f"{r[f'{s}_s']:.2f}" for s in STAGES] if timed else ["(all)", "-", "-", "-"]
        peak = f"{r['peak_gb']:.2f}" if "peak_gb" in r else "-"
        cold_s = f"{r['cold_s']:.1f}" if r.get("cold_s") else "-"
        first = f"{r['first_audio_s']:.2f}" if r.get("first_audio_s") else "-"
        cold_first = f"{r['cold_first_audio_s']:.1f}" if r.get("cold_first_audio_s") else "-"
        rss = f"{r['peak_rss_gb']:.2f}" if r.get("peak_rss_gb") else "-"
        over = f"{r['peak_rss_gb'] - r['base_rss_gb']:.2f}" if r.get("base_rss_gb") else "-"
        lines.append(f"| {name} | {r['batch']} | {' | '.join(stages)} | {r['total_s']:.2f} | "
                     f"{r['audio_s']:.1f} | {r['rtf']:.3f} | {speed} | {first} | {peak} | {cold_s} | {cold_first} | "
                     f"{rss} | {over} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="auto", help="ours and transformers: fp32, bf16, fp16 or auto "
                    "(bf16 on CUDA); Suno's code runs as it does (bf16 autocast on CUDA)")
    ap.add_argument("--tokens", type=int, default=768, help="semantic tokens per text (768 = 15.4 s of audio)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--impl", nargs="+", default=list(IMPLS[:2]) + ["suno", "transformers"],
                    help=f"any of {', '.join(IMPLS)}; a suffix like @bf16 sets that one's precision")
    ap.add_argument("--warmup-tokens", type=int, default=16)
    ap.add_argument("--cold", action="store_true", help="also time weights-on-disk -> first audio in a new process")
    ap.add_argument("--weights", type=Path, default=None, help="where to write/reuse the random weights")
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    ap.add_argument("--threads", type=int, nargs="+", default=None,
                    help="torch intra-op thread counts to compare (each implementation runs once per count; "
                         "default: torch's own choice). bark-say --threads auto uses 1 for the tiny set")
    ap.add_argument("--_cold", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from reference import stub_broken_torchaudio

    stub_broken_torchaudio()  # transformers and Suno's code import torchaudio; a broken build must not stop them
    if args.weights is None:
        args.weights = Path(tempfile.gettempdir()) / f"bark-bench-weights-{args.size}"
    bad = [i for i in args.impl if i.partition("@")[0] not in IMPLS]
    if bad:
        ap.error(f"unknown implementation(s) {bad}; use {', '.join(IMPLS)} (optionally with @fp32/@bf16)")
    if args._cold:
        cold_child(args)
        return []
    t0 = time.perf_counter()
    paths = write_weights(args.weights, args.size)
    print(f"weights ({args.size}) ready in {time.perf_counter() - t0:.1f} s at {args.weights}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for impl in args.impl:
        try:
            run = setup(impl, paths, args.device, args.dtype)
        except Exception as exc:  # a missing reference must not hide the others' numbers
            rows.append({"impl": impl, "batch": 1, "error": f"{type(exc).__name__}: {exc}"[:120]})
            continue
        default_threads = torch.get_num_threads()
        for threads in args.threads or [None]:
            torch.set_num_threads(threads or default_threads)
            for batch in args.batch:
                if impl == "ours-fast-offload" and batch != 1:
                    continue
                print(f"  {impl} batch {batch}" + (f" threads {threads}" if threads else "") + " ...", file=sys.stderr)
                row = {"impl": impl, **measure(run, batch, args.tokens, args.device, args.warmup_tokens)}
                if threads:
                    row["threads"] = threads
                rows.append(row)
                print(f"    {row['total_s']:.2f} s", file=sys.stderr)
        torch.set_num_threads(default_threads)
        del run
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
        if args.cold:
            result = cold(impl, args)
            if result:
                next(r for r in rows if r["impl"] == impl).update(result)
    info = {"date": datetime.date.today().isoformat(), "device": (torch.cuda.get_device_name()
            if args.device.startswith("cuda") else platform.processor() or platform.machine()),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "size": args.size, "dtype": args.dtype,
            "tokens": args.tokens}
    print(f"\n{json.dumps(info)}\n")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
