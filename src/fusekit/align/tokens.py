"""Token strings of any scheme, spelled as the bytes they stand for.

A canonical token is a ``str`` whose characters are bytes (latin-1), so that
"é" is the same two characters whether it came from byte-level BPE (``Ã©``),
from byte-fallback tokens (``<0xC3>``, ``<0xA9>``) or from a plain ``é``, and a
leading space is a space whether it was written ``Ġ`` or ``▁``.

Which scheme a tokenizer uses is read from the tokenizer itself
(:func:`tokenizer_scheme`: its pre-tokenizer, normaliser and decoder), never
guessed from marker characters when the tokenizer can say: real vocabularies
hold both markers as ordinary tokens (Llama-2's SentencePiece vocabulary has
the Maltese letter ``Ġ``, id 31937; DeepSeek's byte-level vocabularies spell
``▁`` inside special tokens). :func:`detect_scheme` is the fallback for bare
token lists: it weighs the evidence for each scheme and takes the majority.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
SCHEMES = ("byte_level", "metaspace", "plain")
METASPACE = "▁"


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's bytes-to-unicode table (printable stand-ins for bytes)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


@lru_cache(maxsize=1)
def _shifted_standins() -> frozenset[str]:
    """The stand-ins GPT-2 moved above U+00FF (bytes that are not printable: space
    ``Ġ``, newline ``Ċ``, tab ``ĉ``, control bytes): only byte-level tokens use them."""
    return frozenset(ch for ch in _byte_decoder() if ord(ch) > 0xFF)


def _byte_level_join(tokens) -> str | None:
    """The text that ``tokens`` spell as byte-level stand-ins, or None if they are not
    all stand-ins or their bytes are not UTF-8."""
    dec = _byte_decoder()
    try:
        return bytes(dec[ch] for t in tokens for ch in t).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None


def detect_scheme(tokens) -> str:
    """The scheme of a list of token strings (a vocabulary or one tokenization).

    Evidence for ``metaspace``: tokens that start with ``▁`` (the lone ``▁`` too),
    and byte-fallback tokens ``<0xNN>``. Evidence for ``byte_level``: tokens of two or
    more characters made of GPT-2 stand-ins only, one of them above U+00FF (``Ġ``,
    ``Ċ``, ``ĉ``, ...). A lone ``Ġ`` is no evidence (an ordinary letter in Llama-2's
    vocabulary), and the larger count wins, so marker letters inside a vocabulary of
    the other scheme do not decide. On a tie, a token with a character that is no
    stand-in at all (``▁``, ``ź``, CJK) decides for ``metaspace``: it cannot be a
    byte-level token. With no evidence either way, a token list whose stand-in bytes
    form valid UTF-8 different from the plain text (``Ã©`` for ``é``) is
    ``byte_level``; otherwise ``plain``.

    Raises ValueError when the evidence is balanced and nothing breaks the tie.
    """
    tokens = list(tokens)
    dec = _byte_decoder()
    shifted = _shifted_standins()
    meta = byte = foreign = 0
    for t in tokens:
        standins = all(ch in dec for ch in t)
        if t.startswith(METASPACE) or BYTE_FALLBACK.match(t):
            meta += 1
        elif len(t) > 1 and standins and any(ch in shifted for ch in t):
            byte += 1
        foreign += not standins
    if meta or byte:
        if meta == byte and foreign:
            return "metaspace"
        if meta == byte:
            raise ValueError(
                f"tokens hold as much byte-level (Ġ) as Metaspace (▁) evidence ({meta} each); "
                "pass the scheme explicitly"
            )
        return "metaspace" if meta > byte else "byte_level"
    joined = _byte_level_join(tokens)
    if joined is not None and joined != "".join(tokens):
        return "byte_level"
    return "plain"


def _utf8_latin1(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def text_of(canonical: list[str]) -> str:
    """The text that canonical tokens spell (UTF-8; undecodable bytes replaced)."""
    return "".join(canonical).encode("latin-1").decode("utf-8", errors="replace")


def compare_texts(a: list[str], b: list[str]) -> str:
    """How the texts of two canonical tokenizations compare, spaces aside: ``same``;
    ``normalised`` when they differ but agree after Unicode NFKC (a tokenizer's
    normaliser: ``…`` vs ``...``, ``ﬁ`` vs ``fi``, a decomposed accent); else
    ``different``."""
    import unicodedata

    ta, tb = text_of(a).replace(" ", ""), text_of(b).replace(" ", "")
    if ta == tb:
        return "same"
    nfkc = unicodedata.normalize
    if nfkc("NFKC", ta).replace(" ", "") == nfkc("NFKC", tb).replace(" ", ""):
        return "normalised"
    return "different"


@lru_cache(maxsize=1)
def _byte_table() -> tuple[dict[int, str], re.Pattern]:
    """``str.translate`` table from GPT-2 stand-ins to the latin-1 characters of their
    bytes, and a pattern matching any character that is not a stand-in."""
    dec = _byte_decoder()
    table = {ord(ch): chr(b) for ch, b in dec.items()}
    others = re.compile("[^" + re.escape("".join(sorted(dec))) + "]")
    return table, others


def canonical_token(token: str, scheme: str, specials: frozenset = frozenset()) -> str:
    """One token as latin-1 bytes; special tokens (``specials``) spell as the UTF-8 bytes
    of their own string (no marker or byte decoding)."""
    if token in specials:
        return _utf8_latin1(token)
    if scheme == "byte_level":
        table, others = _byte_table()
        if others.search(token) is None:
            return token.translate(table)
        return _utf8_latin1(token)
    m = BYTE_FALLBACK.match(token)
    if m:
        return chr(int(m.group(1), 16))
    if scheme == "metaspace":
        token = token.replace(METASPACE, " ")
    return _utf8_latin1(token)


def canonical_tokens(tokens, scheme: str | None = None, specials=()) -> list[str]:
    """Canonical spelling of each token (see the module docstring); the scheme is
    detected with :func:`detect_scheme` when not given."""
    tokens = list(tokens)
    scheme = scheme or detect_scheme(tokens)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown token scheme {scheme!r}; known: {list(SCHEMES)}")
    sp = frozenset(specials)
    return [canonical_token(t, scheme, sp) for t in tokens]


def _components(node) -> list[dict]:
    """Every component of a serialised pipeline stage, flattening ``Sequence`` nodes."""
    if not isinstance(node, dict):
        return []
    out = [node]
    for key in ("normalizers", "pretokenizers", "pre_tokenizers", "decoders", "processors"):
        for child in node.get(key) or []:
            out += _components(child)
    return out


def scheme_of_pipeline(spec: dict) -> str | None:
    """The scheme a serialised ``tokenizers`` pipeline (``tokenizer.json``) declares.

    ``byte_level`` when its pre-tokenizer or decoder is ``ByteLevel``;
    ``metaspace`` when its pre-tokenizer or decoder is ``Metaspace``, or its
    normaliser replaces spaces with ``▁`` (the Llama-2 ``tokenizer.json`` form), or
    its model falls back to bytes; None when it says neither.
    """
    parts = [
        c for key in ("normalizer", "pre_tokenizer", "decoder") for c in _components(spec.get(key))
    ]
    kinds = {c.get("type") for c in parts}
    if "ByteLevel" in kinds:
        return "byte_level"
    replaces_space = any(
        c.get("type") == "Replace"
        and c.get("content") == METASPACE
        and (c.get("pattern") or {}).get("String") == " "
        for c in parts
    )
    if "Metaspace" in kinds or replaces_space or (spec.get("model") or {}).get("byte_fallback"):
        return "metaspace"
    return None


def tokenizer_scheme(tokenizer, override: str | None = None) -> str:
    """The token scheme of a transformers tokenizer.

    ``override`` (``models.<name>.token_scheme`` in the config) wins; else the
    scheme its backend pipeline declares (:func:`scheme_of_pipeline`); else, for
    tokenizers without a ``tokenizers`` backend, :func:`detect_scheme` over the
    vocabulary without its special tokens.
    """
    if override is not None:
        if override not in SCHEMES:
            raise ValueError(f"unknown token scheme {override!r}; known: {list(SCHEMES)}")
        return override
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        scheme = scheme_of_pipeline(json.loads(backend.to_str()))
        if scheme is not None:
            return scheme
    specials = set(getattr(tokenizer, "all_special_tokens", []))
    vocab = [t for t in tokenizer.get_vocab() if t not in specials]
    return detect_scheme(vocab)
