"""A small vocabulary laid out like ``bert-base-multilingual-cased``, for the tiny offline model set and tests.

Kept apart from the tokenizer itself: the real vocabulary comes from the hub; this one only has to make
any ASCII text tokenize without [UNK] and keep the special ids where the real one has them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..fileio import atomic_write
from .tokenizer import (
    MAX_INPUT_CHARS_PER_WORD,
    REAL_VOCAB_SIZE,
    TOKENIZER_FILE,
    UNK_TOKEN,
    VOCAB_FILE,
    _is_chinese_char,
    _is_punctuation,
)

_TINY_WORDS = """
the be to of and a in that have I it for not on with he as you do at this but his by from they we say her
she or an will my one all would there their what so up out if about who get which go me when make can
like time no just him know take people into year your good some could them see other than then now look
only come its over think also back after use two how our work first well way even new want because any
these give day most us is are was were been has had did said does going done made here where why very
much many more must should may might shall yes hello hi world okay oh ah um uh hmm well thank thanks please
sorry love life man woman child home house music song sing sound voice speak talk word words name story
today tomorrow night morning friend friends great little big old young long right left place thing things
laughter laughs laugh sighs sigh gasps gasp clears throat hesitation pause whisper
dog cat bird tree water fire city world country money car road sun moon star sky rain snow
red blue green black white happy sad fun nice cool hot cold
Hello Hi The It I'm You We They This What Yes No Oh Well So And But My Hey Okay
""".split()

_TINY_SUBWORDS = """
s es ed ing er ers est ly ion ions tion tions ment ness able ful less al ive ous ity y n t re un
'
""".split()

_TINY_EXTRA_CHARS = (
    "áàâäãåéèêëíìîïóòôöõúùûüñçßœæøÁÀÂÄÉÈÊÍÓÔÖÚÜÑÇ"  # Latin accents
    "¿¡«»“”‘’–—…♪♫€£¥°·"  # typographic and music marks
    "你好世界中文我是的人们日本語学生大小水火山天地上下"  # CJK ideographs
    "こんにちはありがとうカタナ"  # kana
    "안녕하세요"  # hangul
    "привет"  # cyrillic
)


def tiny_vocab_tokens() -> list[str]:
    """The token list :func:`write_tiny_vocab` writes, in id order, laid out like the real vocabulary.

    Ids 0..103 follow ``bert-base-multilingual-cased`` ([PAD]=0, [unused1..99], [UNK]=100, [CLS]=101,
    [SEP]=102, [MASK]=103) so special ids agree with the real tokenizer; every printable ASCII
    character exists alone and (letters/digits) as a ``##`` piece, so any ASCII text tokenizes
    without [UNK]; other characters outside the list become [UNK].
    """
    tokens = ["[PAD]", *(f"[unused{i}]" for i in range(1, 100)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = set(tokens)

    def add(token: str) -> None:
        if token and token not in seen:
            seen.add(token)
            tokens.append(token)

    for cp in range(33, 127):
        add(chr(cp))
    for cp in range(33, 127):
        if chr(cp).isalnum():
            add("##" + chr(cp))
    for word in _TINY_WORDS:
        add(word)
    for piece in _TINY_SUBWORDS:
        add("##" + piece)
    for char in _TINY_EXTRA_CHARS:
        add(char)
        if not _is_punctuation(char) and not _is_chinese_char(ord(char)):
            add("##" + char)
    assert len(tokens) < REAL_VOCAB_SIZE
    return tokens


def write_tiny_vocab(folder: str | os.PathLike) -> Path:
    """Write a small ``vocab.txt`` plus a matching ``tokenizer.json`` into ``folder``; return the folder.

    For tests and tiny model sets that must run without the hub. ``tokenizer.json`` is built by
    ``tokenizers`` with the same pipeline as the hub's file for ``bert-base-multilingual-cased``,
    so other tools (``transformers``' ``from_pretrained``) read the folder too.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    folder = Path(folder)
    tokens = tiny_vocab_tokens()
    vocab = {t: i for i, t in enumerate(tokens)}
    with atomic_write(folder / VOCAB_FILE) as fh:
        fh.write("".join(t + "\n" for t in tokens).encode("utf-8"))

    tok = Tokenizer(WordPiece(vocab, unk_token=UNK_TOKEN, max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    with atomic_write(folder / TOKENIZER_FILE) as fh:
        fh.write(tok.to_str(pretty=True).encode("utf-8"))
    # As on the hub: tells transformers' from_pretrained that this vocabulary is cased.
    with atomic_write(folder / "tokenizer_config.json") as fh:
        fh.write(json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}).encode("utf-8"))
    return folder
