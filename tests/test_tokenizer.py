"""The text tokenizer gives the ids Suno's BertTokenizer gives, and fails clearly when files are missing."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest

from bark_core.errors import CheckpointError
from bark_core.models.tiny_vocab import tiny_vocab_tokens, write_tiny_vocab
from bark_core.models.tokenizer import (
    REAL_VOCAB_SIZE,
    BarkTokenizer,
    basic_tokenize,
    load_tokenizer,
)

try:
    from .reference import stub_broken_torchaudio
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from reference import stub_broken_torchaudio

TEXTS = [
    "Hello, my name is Suno. And, uh — and I like pizza. [laughs]",
    "[laughter] ok [MASK]x a[UNK]b [CLS][SEP] [PAD]",
    "♪ In the jungle, the mighty jungle, the lion barks tonight ♪",
    "café naïve São Paulo Ärger Straße garçon",
    "你好世界,日本語のテキスト。안녕하세요 привет",
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 ☺",
    "  lots   of\t\nspace \u00a0\u3000 here  ",
    "",
    "   ",
    "a\x00b\ufffdc\u200bd\x7fe",
    "x" * 150,
    "I'm — ... … «quoted» “curly” ‘single’",
    "$100 ^_^ `code` #tag @user 50% a+b=c {x} |y| ~z",
    "\u2028line\u2029para\x85next",
    "hello[MASK]world[UNK]",
    "WHAT? are you... sure!?",
    "It is 3:45pm on 2024-01-02.",
]

# Beyond the sample texts: decomposed accents (the slow tokenizer NFC-normalizes), code points
# unassigned in Python's Unicode tables, and punctuation/letters newer than tokenizers' tables.
TRICKY = ["cafe\u0301 n\u0303", "lone\ud800surrogate", "a\u0378b", "a\u2e43b", "x\u0b55y", "\U0001fae8 \U0002b739"]


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_vocab(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def ours(vocab_dir: Path) -> BarkTokenizer:
    return load_tokenizer(vocab_dir)


@pytest.fixture(scope="module")
def slow_reference(vocab_dir: Path):
    """The pure-Python BertTokenizer Bark was trained and published with (``Legacy`` in transformers 5)."""
    stub_broken_torchaudio()
    transformers = pytest.importorskip("transformers")
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBert
    except ImportError:  # transformers 4: BertTokenizer is the slow one
        if int(transformers.__version__.split(".")[0]) >= 5:
            raise
        from transformers import BertTokenizer as SlowBert
    return SlowBert(
        vocab_file=str(vocab_dir / "vocab.txt"),
        do_lower_case=False,
        tokenize_chinese_chars=True,
        strip_accents=None,
    )


def test_tiny_vocab_layout(vocab_dir: Path, ours: BarkTokenizer) -> None:
    tokens = (vocab_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert tokens[-1] == ""  # newline-terminated like the hub's file
    assert tokens[:-1] == tiny_vocab_tokens()
    assert len(tokens) - 1 == ours.vocab_size < REAL_VOCAB_SIZE
    # special ids are where bert-base-multilingual-cased has them
    assert [ours.get_vocab()[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 100, 101, 102, 103]
    assert (vocab_dir / "tokenizer.json").is_file()
    for text in ("Hello there, general Kenobi!", "the quick brown fox 12345 ~!@#"):
        assert 100 not in ours.encode(text), "every ASCII word must tokenize without [UNK]"
    assert ours.encode("Ω") == [100]


@pytest.mark.parametrize("text", TEXTS + TRICKY)
def test_ids_match_slow_bert_tokenizer(ours: BarkTokenizer, slow_reference, text: str) -> None:
    assert ours.encode(text) == slow_reference.encode(text, add_special_tokens=False)


def test_ids_match_slow_bert_tokenizer_on_random_code_points(ours: BarkTokenizer, slow_reference) -> None:
    # The whole Unicode range agrees (checked once offline: 0 differences in 1,112,064 code
    # points); a seeded sample keeps the test fast.
    rng = random.Random(1234)
    points = [cp for cp in (rng.randrange(0x110000) for _ in range(4000)) if not 0xD800 <= cp <= 0xDFFF]
    points += list(range(0x2E40, 0x2E60)) + list(range(0x0370, 0x0380)) + [0xFE30, 0x3000, 0x00AD, 0x200D]
    for start in range(0, len(points), 40):
        chunk = points[start : start + 40]
        text = " ".join(f"a{chr(cp)}b" for cp in chunk) + "".join(chr(cp) for cp in chunk)
        assert ours.encode(text) == slow_reference.encode(text, add_special_tokens=False), [hex(c) for c in chunk]


def test_ids_match_transformers_bert_tokenizer(ours: BarkTokenizer, vocab_dir: Path) -> None:
    """transformers' current BertTokenizer, loaded the way Bark loads it (from_pretrained on the folder)."""
    stub_broken_torchaudio()
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizer.from_pretrained(str(vocab_dir), do_lower_case=False)
    for text in TEXTS:
        # transformers 5's BertTokenizer runs the Rust pipeline, which does not NFC-normalize;
        # the sample texts are already NFC, so both must agree on them.
        assert unicodedata.is_normalized("NFC", text)
        assert ours.encode(text) == ref.encode(text, add_special_tokens=False), text


def test_vocab_txt_and_tokenizer_json_agree(vocab_dir: Path) -> None:
    from_json = load_tokenizer(vocab_dir / "tokenizer.json")
    from_txt = load_tokenizer(vocab_dir / "vocab.txt")
    assert from_json.checksum == from_txt.checksum
    import hashlib

    assert from_txt.checksum == hashlib.sha256((vocab_dir / "vocab.txt").read_bytes()).hexdigest()
    for text in TEXTS + TRICKY:
        assert from_json.encode(text) == from_txt.encode(text)
    assert from_txt.source == str(vocab_dir / "vocab.txt")


def test_encode_and_decode(ours: BarkTokenizer, slow_reference) -> None:
    ids = ours.encode("Hello, world! [laughter] I'm thinking.")
    assert all(isinstance(i, int) for i in ids)
    assert ours.decode(ids) == "Hello, world! [ laughter ] I'm thinking."
    assert ours.tokenize("thinking") == ["think", "##ing"]
    for text in TEXTS[:6] + ["a [MASK] b [UNK]x ##y"]:
        ids = [101, *ours.encode(text), 102, 99999]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == slow_reference.decode(ids, skip_special_tokens=skip)
    with pytest.raises(TypeError):
        ours.encode(["not", "a", "string"])  # type: ignore[arg-type]


def test_basic_tokenize_rules() -> None:
    assert basic_tokenize("Hello,world!") == ["Hello", ",", "world", "!"]
    assert basic_tokenize("中文abc") == ["中", "文", "abc"]
    assert basic_tokenize("CAFÉ") == ["CAFÉ"]  # cased: no lower-casing, no accent stripping
    assert basic_tokenize("e\u0301") == ["\u00e9"]  # NFC
    assert basic_tokenize("a\x00\ufffd\u200bb") == ["ab"]


# -- the hub path, for real (no mocks): huggingface_hub reading a cache laid out like the hub's --------------


def _fake_hub_cache(root: Path, vocab_file: Path, name: str = "vocab.txt") -> str:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / "models--bert-base-multilingual-cased"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / name).write_bytes(vocab_file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return commit


def test_offline_hub_cache(tmp_path: Path, vocab_dir: Path, ours: BarkTokenizer, monkeypatch) -> None:
    commit = _fake_hub_cache(tmp_path / "hub", vocab_dir / "vocab.txt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = load_tokenizer(cache_dir=tmp_path / "hub")  # tokenizer.json is absent: falls back to vocab.txt
    assert tok.source == f"hf://bert-base-multilingual-cased@{commit}/vocab.txt"
    assert tok.checksum == ours.checksum
    assert tok.encode(TEXTS[0]) == ours.encode(TEXTS[0])


def test_offline_hub_cache_prefers_tokenizer_json(tmp_path: Path, vocab_dir: Path, ours: BarkTokenizer) -> None:
    commit = _fake_hub_cache(tmp_path / "hub", vocab_dir / "tokenizer.json", name="tokenizer.json")
    tok = load_tokenizer(cache_dir=tmp_path / "hub", local_files_only=True)
    assert tok.source == f"hf://bert-base-multilingual-cased@{commit}/tokenizer.json"
    assert tok.encode(TEXTS[2]) == ours.encode(TEXTS[2])


def test_missing_hub_files_give_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as info:
        load_tokenizer(cache_dir=tmp_path / "empty")
    msg = str(info.value)
    for needle in ("vocab.txt", "bert-base-multilingual-cased", "huggingface.co", "offline", "load_tokenizer(source="):
        assert needle in msg


def test_missing_local_paths_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="No tokenizer file or folder at"):
        load_tokenizer(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither tokenizer.json nor vocab.txt"):
        load_tokenizer(tmp_path / "empty")
    bad = tmp_path / "vocab.txt"
    bad.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"no \[UNK\] token"):
        load_tokenizer(bad)
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="Cannot read the tokenizer file"):
        load_tokenizer(broken)


def test_provenance_names_the_tokenizer_without_the_local_path(tiny_dir, tmp_path):
    """Saved artifacts travel (shared takes, render reports): the tokenizer is named by file and hash."""
    import json as _json

    from bark_core import BarkModels, generate_semantic, load_artifact

    models = BarkModels(tiny_dir, device="cpu")
    sem = generate_semantic(models, "Hello there.", seed=1, max_gen_duration_s=0.2)
    recorded = sem.provenance.settings["tokenizer"]
    assert str(tiny_dir) not in recorded and "sha256:" in recorded, recorded
    path = sem.save(tmp_path / "sem.npz")
    assert str(tiny_dir) not in _json.dumps(load_artifact(path).provenance.settings)
