"""Bark's text tokenizer, without ``transformers`` at run time.

Suno's Bark tokenizes prompts with ``BertTokenizer.from_pretrained("bert-base-multilingual-cased")``
and ``encode(text, add_special_tokens=False)``; the ids (plus an offset) are what the text model
was trained on, so they must match exactly. That ``BertTokenizer`` was the slow, pure-Python one.
Its steps are reproduced here:

1. split out the special tokens (``[UNK]``, ``[SEP]``, ``[PAD]``, ``[CLS]``, ``[MASK]``) wherever
   they appear in the raw text;
2. on the rest, BERT's basic tokenization: drop control characters, NUL and U+FFFD, map
   whitespace to spaces, put spaces around CJK ideographs, NFC-normalize, split on whitespace,
   split off every punctuation character (cased: no lower-casing, no accent stripping);
3. greedy longest-match WordPiece with ``##`` continuations, a word longer than 100 characters or
   with an unmatched remainder becoming ``[UNK]``.

Step 3 runs in the ``tokenizers`` library. Steps 1 and 2 are done in Python on purpose: the
Rust ``BertNormalizer``/``BertPreTokenizer`` classify characters with Unicode 9-era tables and
disagree with the Python tokenizer on about 830,000 code points (unassigned ones it keeps where
Python drops them, and a few hundred newer punctuation marks and letters). ``unicodedata`` is
what the slow tokenizer used, so using it here gives the same ids on the same Python.

Note: the slow tokenizer has NFC-normalized since transformers 4.29; the ``tokenizer.json`` on
the hub (and transformers 5's Rust-backed ``BertTokenizer``) does not, so for text typed with
decomposed accents (``"e\\u0301"``) those give different ids. We follow the slow tokenizer.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import constants as C
from ..errors import CheckpointError
from ..hub import HubFileError, hub_cache, hub_endpoint, hub_unreachable, public_file_id
from ..limits import loads_json

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
UNK_TOKEN = "[UNK]"
SPECIAL_TOKENS: tuple[str, ...] = ("[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]")
MAX_INPUT_CHARS_PER_WORD = 100
REAL_VOCAB_SIZE = 119_547  # bert-base-multilingual-cased
HUB_URL = f"https://huggingface.co/{C.TOKENIZER_REPO}"

_TRUE = {"1", "ON", "YES", "TRUE"}
# transformers' clean_up_tokenization, applied by the slow tokenizer's decode
_CLEANUPS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


# ---------------------------------------------------------------------------------------------
# BERT basic tokenization, exactly as transformers' slow BasicTokenizer (cased settings)
# ---------------------------------------------------------------------------------------------


def _is_whitespace(char: str) -> bool:
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # ASCII non-letters/digits count as punctuation even where Unicode says otherwise ("$", "^", "`").
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text: str) -> list[str]:
    """Split text into words and single punctuation marks the way BERT (cased) does before WordPiece."""
    out: list[str] = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            continue
        if _is_whitespace(char):
            out.append(" ")
        elif _is_chinese_char(cp):
            out.extend((" ", char, " "))
        else:
            out.append(char)
    text = unicodedata.normalize("NFC", "".join(out))
    words: list[str] = []
    for token in text.split():
        current: list[str] = []
        for char in token:
            if _is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
    return words


# ---------------------------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------------------------


class BarkTokenizer:
    """``bert-base-multilingual-cased`` tokenization as Bark uses it, from a vocabulary.

    Build it with :func:`load_tokenizer`. Only the vocabulary is taken from the file; the
    tokenization rules are always Bark's (cased BERT), so a ``vocab.txt`` and the matching
    ``tokenizer.json`` give the same ids and the same :attr:`checksum`.
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        *,
        source: str,
        special_tokens: Iterable[str] = SPECIAL_TOKENS,
        unk_token: str = UNK_TOKEN,
    ) -> None:
        from tokenizers import Tokenizer
        from tokenizers.models import WordPiece

        if unk_token not in vocab:
            raise CheckpointError(
                f"The tokenizer vocabulary from {source} has no {unk_token} token, so it is not a BERT "
                f"WordPiece vocabulary. Use the vocab.txt or tokenizer.json of {C.TOKENIZER_REPO}."
            )
        self._vocab: dict[str, int] = dict(vocab)
        top = C.TEXT_PAD_TOKEN - C.TEXT_ENCODING_OFFSET  # Bark's text embedding holds 119,547 word pieces
        bad = next((t for t, i in self._vocab.items() if type(i) is not int or not 0 <= i < top), None)
        if bad is not None:
            raise CheckpointError(f"The tokenizer vocabulary from {source} gives {bad!r:.40} the id "
                                  f"{self._vocab[bad]!r:.20}; Bark takes 0..{top - 1}. Use {C.TOKENIZER_REPO}'s.")
        self.source = source
        self.unk_token = unk_token
        self.unk_id = self._vocab[unk_token]
        self.special_tokens: tuple[str, ...] = tuple(t for t in special_tokens if t in self._vocab)
        # Longest first, like the trie of transformers' slow tokenizer.
        ordered = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in ordered) + ")") if ordered else None
        self._id_to_token = {i: t for t, i in self._vocab.items()}
        self._backend = Tokenizer(
            WordPiece(
                self._vocab,
                unk_token=unk_token,
                continuing_subword_prefix="##",
                max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
            )
        )

    # -- properties ---------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of vocabulary entries (119,547 for ``bert-base-multilingual-cased``)."""
        return len(self._vocab)

    @property
    def public_source(self) -> str:
        """Where the vocabulary came from, fit for provenance that leaves the machine: a hub repo id as it
        is, a local file as its name plus a short hash of the vocabulary (never the user's path)."""
        source = str(self.source)
        if source.startswith("hf://") or not (os.path.isabs(source) or os.sep in source or source.startswith(".")):
            return source  # hf://repo@commit/file, or a bare repo id
        return public_file_id(source, self.checksum)

    @property
    def checksum(self) -> str:
        """sha256 of the vocabulary written as ``vocab.txt`` (one token per line, ``\\n``-terminated).

        For a ``vocab.txt`` in that standard layout this is the sha256 of the file itself; a
        ``tokenizer.json`` holding the same vocabulary gives the same value, so provenance records
        the vocabulary, not the file format it came in.
        """
        if not hasattr(self, "_checksum"):
            ordered = sorted(self._vocab.items(), key=lambda kv: kv[1])
            self._checksum = hashlib.sha256("".join(t + "\n" for t, _ in ordered).encode("utf-8")).hexdigest()
        return self._checksum

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    # -- encode / decode ----------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """WordPiece strings for ``text`` (handy to inspect why a prompt got ``[UNK]``)."""
        return [self._id_to_token.get(i, self.unk_token) for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        """Token ids without ``[CLS]``/``[SEP]``: Bark's ``tokenizer.encode(text, add_special_tokens=False)``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        segments = self._special_re.split(text) if self._special_re is not None else [text]
        ids: list[int] = []
        for index, segment in enumerate(segments):
            if index % 2 == 1:  # a special token matched by the split
                ids.append(self._vocab[segment])
                continue
            words = basic_tokenize(segment)
            if words:
                ids.extend(self._backend.encode(words, is_pretokenized=True, add_special_tokens=False).ids)
        return ids

    def decode(
        self, ids: Sequence[int], *, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool = True
    ) -> str:
        """Readable text for ids, as the slow BertTokenizer's ``decode``; not an exact inverse of encode."""
        ids = [int(i) for i in ids]
        if skip_special_tokens:  # by id, as transformers does: an unknown id still shows as [UNK]
            special_ids = {self._vocab[t] for t in self.special_tokens}
            ids = [i for i in ids if i not in special_ids]
        tokens = [self._id_to_token.get(i, self.unk_token) for i in ids]
        text = " ".join(tokens).replace(" ##", "").strip()
        if clean_up_tokenization_spaces:
            for before, after in _CLEANUPS:
                text = text.replace(before, after)
        return text

    def __repr__(self) -> str:
        return f"BarkTokenizer(source={self.source!r}, vocab_size={self.vocab_size})"

    # -- construction from files --------------------------------------------------------------

    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike, *, source: str | None = None) -> BarkTokenizer:
        """Read a BERT ``vocab.txt`` the way transformers' ``load_vocab`` does (line number = id)."""
        path = Path(path)
        try:
            _check_size(path)
            with open(path, encoding="utf-8") as reader:
                lines = reader.readlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(
                f"Cannot read the tokenizer vocabulary {path} ({exc}). Point load_tokenizer() at an intact "
                f"vocab.txt of {C.TOKENIZER_REPO}."
            ) from exc
        vocab: dict[str, int] = {}
        for index, line in enumerate(lines):
            vocab[line.rstrip("\n")] = index
        return cls(vocab, source=source or str(path))

    @classmethod
    def from_tokenizer_json(cls, path: str | os.PathLike, *, source: str | None = None) -> BarkTokenizer:
        """Take the WordPiece vocabulary out of a ``tokenizers`` ``tokenizer.json``."""
        path = Path(path)
        try:
            _check_size(path)
            data: Any = loads_json(path.read_bytes(), str(path), error=CheckpointError, max_bytes=MAX_TOKENIZER_BYTES)
        except (OSError, UnicodeDecodeError, ValueError, CheckpointError) as exc:
            raise CheckpointError(
                f"Cannot read the tokenizer file {path} ({exc}). Point load_tokenizer() at an intact "
                f"tokenizer.json or vocab.txt of {C.TOKENIZER_REPO}."
            ) from exc
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, dict) or model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise CheckpointError(
                f"{path} is not a WordPiece tokenizer.json. Bark needs the tokenizer of {C.TOKENIZER_REPO}."
            )
        normalizer = data.get("normalizer") or {}
        if isinstance(normalizer, dict) and normalizer.get("lowercase"):
            raise CheckpointError(
                f"{path} describes a lower-casing (uncased) tokenizer; Bark needs the cased {C.TOKENIZER_REPO}."
            )
        vocab = {str(k): v for k, v in model["vocab"].items()}  # ids are checked when the tokenizer is built
        specials = list(SPECIAL_TOKENS)
        for added in data.get("added_tokens") or []:
            if isinstance(added, dict) and added.get("special") and "content" in added:
                vocab.setdefault(str(added["content"]), added.get("id"))
                if added["content"] not in specials:
                    specials.append(str(added["content"]))
        unk = str(model.get("unk_token") or UNK_TOKEN)
        return cls(vocab, source=source or str(path), special_tokens=specials, unk_token=unk)


MAX_TOKENIZER_BYTES = 64 * 1024**2  # bert-base-multilingual-cased: vocab.txt 1 MB, tokenizer.json 3 MB


def _check_size(path: Path) -> None:
    if path.stat().st_size > MAX_TOKENIZER_BYTES:
        raise CheckpointError(f"{path} is far larger than a tokenizer file; use the one of {C.TOKENIZER_REPO}.")


def _from_file(path: Path, source: str | None = None) -> BarkTokenizer:
    if path.suffix == ".json":
        return BarkTokenizer.from_tokenizer_json(path, source=source)
    return BarkTokenizer.from_vocab_file(path, source=source)


def _hub_source(repo: str, filename: str, local_path: str) -> str:
    """``repo@commit/filename`` when the cache path shows the commit, so provenance pins the revision."""
    parts = Path(local_path).parts
    if "snapshots" in parts:
        i = len(parts) - 1 - parts[::-1].index("snapshots")
        if i + 1 < len(parts):
            return f"hf://{repo}@{parts[i + 1]}/{filename}"
    return f"hf://{repo}/{filename}"


def load_tokenizer(
    source: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> BarkTokenizer:
    """Load Bark's tokenizer from the hub cache, a folder, or a file.

    ``source=None`` fetches ``tokenizer.json`` (falling back to ``vocab.txt``) of
    ``bert-base-multilingual-cased`` through ``huggingface_hub`` into its usual cache (or
    ``cache_dir``); with ``local_files_only`` (default: the ``HF_HUB_OFFLINE`` environment variable)
    only the cache is used. A folder must contain ``tokenizer.json`` or ``vocab.txt``; a file is
    read as ``tokenizer.json`` when it ends in ``.json`` and as ``vocab.txt`` otherwise.

    The result is not cached here: loading the real vocabulary takes a fraction of a second, and
    the caller (the model registry) decides how long to keep it.
    """
    if source is not None:
        path = Path(source).expanduser()
        if path.is_dir():
            for name in (TOKENIZER_FILE, VOCAB_FILE):
                if (path / name).is_file():
                    return _from_file(path / name)
            raise CheckpointError(
                f"The folder {path} has neither {TOKENIZER_FILE} nor {VOCAB_FILE}. Copy those files of "
                f"{C.TOKENIZER_REPO} ({HUB_URL}) there, or pass the path of the file itself."
            )
        if path.is_file():
            return _from_file(path)
        raise CheckpointError(
            f"No tokenizer file or folder at {path}. Pass a folder holding {TOKENIZER_FILE} or {VOCAB_FILE} of "
            f"{C.TOKENIZER_REPO}, the path of one of those files, or source=None to use the Hugging Face hub cache."
        )

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE
    cache_only = bool(local_files_only)
    unreachable = None if cache_only else hub_unreachable()  # one quick look instead of ~20 s of retries
    cache_only = cache_only or unreachable is not None
    problems: list[str] = []
    last_exc: BaseException | None = None
    for name in (TOKENIZER_FILE, VOCAB_FILE):
        try:
            local = hf_hub_download(
                C.TOKENIZER_REPO,
                name,
                cache_dir=os.fspath(cache_dir) if cache_dir is not None else None,
                local_files_only=cache_only,
            )
        except Exception as exc:  # not cached while offline, hub unreachable, file absent from the repo
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            problems.append(f"{name}: {type(exc).__name__}: {first_line}")
            last_exc = exc
            if isinstance(exc, LocalEntryNotFoundError):
                # The hub did not answer (huggingface_hub already retried for ~20 s): look for the
                # next file in the cache only instead of waiting through the retries again.
                cache_only = True
            continue
        return _from_file(Path(local), source=_hub_source(C.TOKENIZER_REPO, name, local))
    if unreachable is not None:
        raise HubFileError("The Bark text tokenizer", C.TOKENIZER_REPO, VOCAB_FILE,
                           f"the hub at {hub_endpoint()} is unreachable ({unreachable})", hub_cache(cache_dir),
                           local=f"tokenizer/{VOCAB_FILE}") from last_exc
    where = f"the cache {cache_dir}" if cache_dir is not None else "the Hugging Face hub cache"
    mode = " (offline mode: HF_HUB_OFFLINE or local_files_only is set)" if local_files_only else ""
    why = "offline mode is on (--offline, HF_HUB_OFFLINE=1 or local_files_only=True)" if local_files_only else (
        f"the hub did not serve it ({'; '.join(problems)})")
    # offline, huggingface_hub's own advice would only repeat the reason (and say to turn offline mode on)
    details = "" if local_files_only else f" Details: {'; '.join(problems)}"
    raise HubFileError("The Bark text tokenizer", C.TOKENIZER_REPO, VOCAB_FILE, why, hub_cache(cache_dir),
                       local=f"tokenizer/{VOCAB_FILE}", message=
        f"Could not get the Bark text tokenizer ({VOCAB_FILE} of {C.TOKENIZER_REPO}) from {HUB_URL} or "
        f"{where}{mode}.{details} Fix: run once online so it is cached, or put {VOCAB_FILE} (from "
        f"{HUB_URL}/resolve/main/{VOCAB_FILE}) in a folder and call load_tokenizer(source='that/folder')."
    ) from last_exc


# ---------------------------------------------------------------------------------------------
# A tiny vocabulary for tests and tiny model sets
# ---------------------------------------------------------------------------------------------
