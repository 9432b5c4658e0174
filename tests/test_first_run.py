"""A new user's first hour: the printed seed redoes the take, every wrong invocation costs one line and
no model load, --help is instant, an unreachable hub answers at once, and tiny-set files say they
are noise."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import bark_core
from bark_core import BarkModels, OutputPathError, StageCache, Voice, derive_seed, generate, load_artifact, save_wav
from bark_core.cli import ProgressBar, main, say_main
from bark_core.label import read_label

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _quick(tiny_dir: Path, out: Path, *extra: str) -> list[str]:
    """bark-say arguments for a short tiny take (the fixture's set has no take cap of its own)."""
    return ["Hello there", "--models", str(tiny_dir), "--device", "cpu", "--max-duration", "0.4", "-q",
            "-o", str(out), *extra]


def _tokens(folder: Path, stem: str) -> list[np.ndarray]:
    arts = [load_artifact(folder / f"{stem}.{k}.npz") for k in ("semantic", "coarse", "fine")]
    return [arts[0].tokens, arts[1].codes, arts[2].codes]


# ---- 1: one master seed ---------------------------------------------------------------------------

def test_the_printed_and_labelled_seed_redoes_the_take(tiny_dir, tmp_path, capsys):
    arts = tmp_path / "arts"
    assert say_main(_quick(tiny_dir, tmp_path / "a.wav", "--save-artifacts", str(arts))) == 0
    printed = int(re.search(r"seed (\d+);", capsys.readouterr().out).group(1))
    labelled = read_label(tmp_path / "a.wav")["seed"]
    assert labelled == printed
    sem = load_artifact(arts / "a.semantic.npz")
    assert sem.provenance.seed == derive_seed(printed, "semantic")  # each stage's own seed stays in provenance
    assert say_main(_quick(tiny_dir, tmp_path / "b.wav", "--save-artifacts", str(arts), "--seed", str(labelled))) == 0
    assert f"seed {printed};" in capsys.readouterr().out
    for first, again in zip(_tokens(arts, "a"), _tokens(arts, "b"), strict=True):
        np.testing.assert_array_equal(first, again)
    assert read_label(tmp_path / "b.wav")["seed"] == printed
    # --seed 1 prints and labels 1, not a derived number
    assert say_main(_quick(tiny_dir, tmp_path / "c.wav", "--seed", "1")) == 0
    assert "seed 1;" in capsys.readouterr().out and read_label(tmp_path / "c.wav")["seed"] == 1


def test_generate_batch_and_long_form_draw_one_master_seed_that_redoes_them(tiny_dir):
    from bark_core import generate_batch, generate_long

    models = BarkModels(tiny_dir, device="cpu", cache=StageCache(False))
    kw = dict(max_gen_duration_s=0.3)
    take = generate(models, "Hello there", "v2/en_speaker_6", **kw)
    assert isinstance(take.seed, int) and take.label_meta()["seed"] == take.seed
    # unseeded runs stay out of the stage cache (decode is deterministic and always cached)
    assert models.cache.info()["memory_items"] == 1
    again = generate(models, "Hello there", "v2/en_speaker_6", seed=take.seed, **kw)
    np.testing.assert_array_equal(take.fine.codes, again.fine.codes)
    takes = generate_batch(models, ["One line.", "Two lines."], "v2/en_speaker_6", seeds=[None, 5], **kw)
    assert takes[1].seed == 5 and isinstance(takes[0].seed, int)
    redo = generate(models, "One line.", "v2/en_speaker_6", seed=takes[0].seed, **kw)
    np.testing.assert_array_equal(redo.semantic.tokens, takes[0].semantic.tokens)
    long = generate_long(models, "First part. Second part!", "v2/en_speaker_6", max_chars=12, **kw)
    assert len(long.takes) == 2 and long.label_meta()["seed"] == long.seed
    long_again = generate_long(models, "First part. Second part!", "v2/en_speaker_6", max_chars=12,
                               seed=long.seed, **kw)
    np.testing.assert_array_equal(long.audio.samples, long_again.audio.samples)
    with pytest.raises(bark_core.BarkError, match="seed must be a whole number"):
        generate(models, "Hello", seed=-1)


def test_a_label_never_carries_a_seed_that_would_not_redo_the_take(tiny_dir):
    models = BarkModels(tiny_dir, device="cpu")
    take = generate(models, "Hello", seed=3, max_gen_duration_s=0.3)
    assert take.label_meta()["seed"] == 3
    take.seed = 4  # e.g. a studio whose master seed changed after the take
    assert take.label_meta()["seed"] is None
    assert take.label_meta(seed=9)["seed"] == 9  # an explicit seed is the caller's word


# ---- 2, 3 and issue 13: arguments checked before any model loads -----------------------------------

@pytest.fixture()
def no_loads(monkeypatch):
    loads: list[str] = []
    original = BarkModels._load

    def counting(self, stage):
        loads.append(stage)
        return original(self, stage)

    monkeypatch.setattr(BarkModels, "_load", counting)
    return loads


def _wrong_invocations(tmp_path: Path) -> dict[str, list[str]]:
    exists = tmp_path / "exists.wav"
    exists.write_bytes(b"keep me")
    (tmp_path / "d.wav").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "voice.npz").write_bytes(b"keep")
    cases = {
        "existing output": ["-o", str(exists)],
        "unknown format": ["-o", str(tmp_path / "x.xyz")],
        "no extension": ["-o", str(tmp_path / "noext")],
        "folder output": ["-o", str(tmp_path)],
        "folder with --overwrite": ["-o", str(tmp_path / "d.wav"), "--overwrite"],
        "unwritable place": ["-o", "/proc/x.wav"],
        "output under a file": ["-o", str(tmp_path / "afile" / "x.wav")],
        "artifacts into a file": ["--save-artifacts", str(tmp_path / "afile")],
        "voice file exists": ["--save-voice", str(tmp_path / "voice.npz")],
        "device gpu": ["--device", "gpu"],
        "device toaster": ["--device", "toaster"],
        "negative seed": ["--seed", "-1"],
        "huge seed": ["--seed", str(2**64)],
        "temperature not a number": ["--text-temp", "abc"],
        "temperature zero": ["--coarse-temp", "0"],
        "temperature nan": ["--fine-temp", "nan"],
        "min-eos-p above 1": ["--min-eos-p", "2"],
        "zero duration": ["--max-duration", "0"],
        "zero threads": ["--threads", "0"],
        "unknown option": ["--colour", "red"],
    }
    if not torch.cuda.is_available():
        cases["cuda without a GPU"] = ["--device", "cuda"]
    else:
        cases["cuda index out of range"] = ["--device", f"cuda:{torch.cuda.device_count()}"]
    if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        cases["mps without Apple silicon"] = ["--device", "mps"]
    return cases


def test_every_wrong_invocation_is_one_line_exit_2_before_any_model_loads(tiny_dir, tmp_path, capsys, no_loads):
    for name, extra in _wrong_invocations(tmp_path).items():
        args = ["Hello", "--models", str(tiny_dir), "-q"]
        if "-o" not in extra:
            args += ["-o", str(tmp_path / "fresh.wav")]
        assert say_main(args + extra) == 2, name
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, captured.err)
        assert "overwrite=True" not in lines[0] and "format=" not in lines[0], (name, lines[0])  # CLI terms only
        assert not (tmp_path / "fresh.wav").exists(), name
    assert no_loads == []
    assert (tmp_path / "exists.wav").read_bytes() == b"keep me"  # nothing replaced
    # the advice names the options a user types
    say_main(["Hello", "--models", str(tiny_dir), "-o", str(tmp_path / "exists.wav")])
    assert "--overwrite" in capsys.readouterr().err


def test_bark_core_label_and_detect_check_their_arguments_first(tmp_path, capsys):
    from bark_core import Audio, Provenance

    src = save_wav(Audio(samples=np.zeros(4800, np.float32), provenance=Provenance(stage="t")), tmp_path / "in.wav",
                   label=False)
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep")
    for argv in (["label", str(src), str(out)], ["label", str(src), str(tmp_path / "o.xyz")],
                 ["label", str(src), str(tmp_path / "o.wav"), "--sample-rate", "1000000000"],
                 ["label", str(src), str(tmp_path / "o.mp3"), "--bitrate", "fast"],
                 ["label", str(src), str(tmp_path / "o.wav"), "--format", "aiff"],
                 ["label", str(src), str(tmp_path / "o.wav"), "--strength-db", "inf"],
                 ["detect", str(src), "--threshold", "-1"], ["tiny-models", str(tmp_path / "t"), "--seed", "-3"]):
        assert main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, lines)
    main(["label", str(src), str(out)])
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep"
    main(["label", str(src), str(tmp_path / "o.xyz")])
    assert "--format" in capsys.readouterr().err and not (tmp_path / "o.xyz").exists()


def test_unforeseen_failures_are_one_line_too_and_tracebacks_wait_for_verbose(tiny_dir, tmp_path, capsys,
                                                                              monkeypatch):
    import bark_core.cli.say as say

    def broken(args):
        raise RuntimeError("deep inside\nsecond line")

    monkeypatch.setattr(say, "run_say", broken)
    assert say_main(["Hello", "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert err == "error: deep inside second line (RuntimeError; run with -v for the traceback)\n"
    assert say_main(["-v", "Hello", "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == "error: deep inside second line (RuntimeError)"


def _run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env or ENV, timeout=timeout)


def test_wrong_invocations_from_a_shell(tiny_dir, tmp_path):
    (tmp_path / "d.wav").mkdir()
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for argv in (["say", "hi", "--device", "gpu"], ["say", "hi", "-o", str(tmp_path / "d.wav"), "--overwrite"],
                 ["say", "hi", "--models", str(tiny_dir), "--text-temp", "-1"],
                 ["tiny-models", str(blocker / "sub")],  # an OSError deep in the writer, not a BarkError
                 ["label", str(tmp_path / "missing.wav"), str(tmp_path / "out.xyz")]):
        proc = _run("-m", "bark_core.cli", *argv)
        assert proc.returncode == 2, (argv, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, (argv, lines)


# ---- 7: help and start-up --------------------------------------------------------------------------

def test_help_and_usage_errors_answer_without_importing_torch():
    script = textwrap.dedent("""
        import contextlib, io, sys
        from bark_core.cli import main, say_main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            codes = [say_main(["--help"]), main(["--help"]), main(["say", "--help"]), main(["label", "--help"]),
                     main(["check", "--help"]), say_main(["hi", "--seed", "-1"]), main(["tiny-models"])]
        print(codes, "torch" in sys.modules)
    """)
    proc = _run("-c", script)
    assert proc.stdout.strip() == "[0, 0, 0, 0, 0, 2, 2] False", proc.stdout + proc.stderr


def _parsers(parser):
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_and_command_says_what_it_is_for():
    from bark_core.cli import build_parser

    missing = []
    for parser in _parsers(build_parser()):
        if parser.prog != "bark-core" and not parser.description:
            missing.append(f"{parser.prog}: no description")
        for action in parser._actions:
            if action.option_strings and not action.help:
                missing.append(f"{parser.prog} {action.option_strings[0]}: no help")
    assert not missing, missing


# ---- 4: an unreachable hub --------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_hub_answers_in_one_line_within_seconds(tmp_path):
    env = {k: v for k, v in ENV.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HOME=str(tmp_path / "hf"))
    script = textwrap.dedent(f"""
        import json, sys, time, contextlib, io
        import bark_core.stages, bark_core.label  # imports are not what is timed
        from bark_core import BarkModels
        from bark_core.cli import say_main
        err = io.StringIO()
        t = time.monotonic()
        with contextlib.redirect_stderr(err):
            code = say_main(["Hello", "--voice", "v2/en_speaker_6", "-q", "-o", {str(tmp_path / "x.wav")!r}])
            code2 = say_main(["Hello", "-q", "-o", {str(tmp_path / "y.wav")!r}])
        took = time.monotonic() - t
        try:
            BarkModels("suno").voice("announcer")
        except Exception as exc:
            api = str(exc)
        print(json.dumps(dict(code=code, code2=code2, took=took, err=err.getvalue(), api=api)))
    """)
    proc = _run("-c", script, env=env)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["code"], out["code2"]) == (2, 2), proc.stderr
    assert out["took"] < 5.0, out  # both runs: one quick look at the hub, no retries
    lines = out["err"].strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines), lines
    voice, tokenizer = lines
    for needle in ("Voice preset 'v2/en_speaker_6'", "unreachable", str(tmp_path / "hf"), "--offline",
                   "--models FOLDER", "voices/v2/en_speaker_6.npz", "--tiny"):
        assert needle in voice, (needle, voice)
    assert "tokenizer" in tokenizer and "speaker_embeddings_path.json in FOLDER" not in tokenizer
    assert "--" not in out["api"] and "tiny_model_dir()" in out["api"]  # Python advice for Python callers


# ---- 6: tiny-set output says it is noise -----------------------------------------------------------

def test_files_from_the_tiny_set_say_they_are_untrained(tiny_dir, tmp_path, capsys):
    out = tmp_path / "t.wav"
    assert say_main(_quick(tiny_dir, out, "--seed", "2")) == 0
    label = read_label(out)
    assert label["untrained"] is True and label["digital_source_type"].endswith("/algorithmicMedia")
    capsys.readouterr()
    main(["check", str(out)])
    assert "UNTRAINED" in capsys.readouterr().out
    main(["check", str(out), "--json"])
    assert json.loads(capsys.readouterr().out)[0]["untrained"] is True
    assert main(["detect", str(out)]) == 0
    assert "UNTRAINED" in capsys.readouterr().out


# ---- 7: the truncation warning and --long ----------------------------------------------------------

def test_a_cut_text_warns_once_and_points_at_long(tiny_dir, tmp_path):
    text = " ".join(["supercalifragilistic"] * 200)
    proc = _run("-m", "bark_core.cli", "say", text, "--models", str(tiny_dir), "--max-duration", "0.2", "-q",
                "-o", str(tmp_path / "cut.wav"))
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "cut" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "--long" in warned[0], proc.stderr
    assert "UserWarning" not in proc.stderr


def test_long_speaks_a_long_text_in_chunks(tiny_dir, tmp_path, capsys):
    arts = tmp_path / "arts"
    assert say_main(["First sentence here. And a second one! A third?", "--models", str(tiny_dir), "-q",
                     "--max-duration", "0.3", "--long", "-o", str(tmp_path / "long3.wav"),
                     "--save-artifacts", str(arts)]) == 0
    assert "long3.wav" in capsys.readouterr().out
    assert (arts / "long3.chunk001.semantic.npz").is_file()


# ---- 7 and 11: the progress display ----------------------------------------------------------------

class FakeClock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_bar_redraws_at_most_ten_times_a_second_whatever_the_token_rate():
    stream = io.StringIO()
    bar = ProgressBar(stream, clock=FakeClock(0.001), tty=True)  # 1,000 tokens a second for 20 s
    for done in range(1, 20_001):
        bar("semantic", done, 20_000)
    bar("semantic", 20_000, 20_000)  # a stage that reports 100 % twice is drawn once
    bar.close()
    frames = stream.getvalue().count("\r")
    assert 195 <= frames <= 202, frames
    assert stream.getvalue().count("100.0%") == 1


def test_off_a_terminal_progress_is_a_few_plain_lines():
    stream = io.StringIO()
    bar = ProgressBar(stream, clock=FakeClock(0.001), tty=False)
    for stage, n in (("semantic", 20_000), ("coarse", 3_000)):
        for done in range(1, n + 1):
            bar(stage, done, n)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == ["semantic: 50% after 10.0 s", "semantic: done in 20.0 s", "coarse: done in 3.0 s"], lines


# ---- 8: threads ------------------------------------------------------------------------------------

def test_the_tiny_set_runs_on_one_thread_and_the_count_is_given_back(tiny_dir, tmp_path):
    from bark_core.stages import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(BarkModels(tiny_dir, device="cpu")) as n:
        assert n == 1 == torch.get_num_threads()
    with cpu_threads(BarkModels("suno", device="cpu")) as n:  # real weights: torch's own choice
        assert n == before == torch.get_num_threads()
    with cpu_threads(BarkModels(tiny_dir, device="cpu"), 3) as n:
        assert n == 3 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    assert say_main(_quick(tiny_dir, tmp_path / "t.wav", "--threads", "auto")) == 0
    assert torch.get_num_threads() == before  # a CLI run inside Python leaves the process as it was


# ---- 9: saving never overwrites unless asked ---------------------------------------------------------

def test_voice_and_wav_saves_never_overwrite_unless_asked(tmp_path):
    from bark_core import Audio, Provenance

    voice = Voice(semantic=np.arange(30), coarse=np.zeros((2, 45), np.int64), fine=np.zeros((8, 45), np.int64),
                  name="v", source={"kind": "generated"})
    path = voice.save(tmp_path / "v.npz")
    with pytest.raises(OutputPathError, match="already exists"):
        voice.save(path)
    voice.save(path, overwrite=True)
    audio = Audio(samples=np.zeros(2400, np.float32), provenance=Provenance(stage="t"))
    wav = save_wav(audio, tmp_path / "a.wav", label=False)
    with pytest.raises(OutputPathError, match="already exists"):
        save_wav(audio, wav, label=False)
    save_wav(audio, wav, label=False, overwrite=True)


# ---- 10: packaging ---------------------------------------------------------------------------------

def test_the_package_lists_every_folder_it_ships_and_an_spdx_license():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)
    listed = set(project["tool"]["setuptools"]["packages"])
    mapped = project["tool"]["setuptools"].get("package-dir", {})
    on_disk = set()
    for top in ("bark_core", "bark_nodes"):
        for init in (ROOT / top).rglob("__init__.py"):
            on_disk.add(".".join(init.parent.relative_to(ROOT).parts))
    for data in project["tool"]["setuptools"].get("package-data", {}):
        on_disk.add(data)
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert mapped.get("bark_studio") == "widgets" and "bark_studio" in listed
