"""Token strings of any scheme, spelled as the bytes they stand for.

A canonical token is a ``str`` whose characters are bytes (latin-1), so that
"é" is the same two characters whether it came from byte-level BPE (``Ã©``),
from byte-fallback tokens (``<0xC3>``, ``<0xA9>``) or from a plain ``é``, and a
leading space is a space whether it was written ``Ġ`` or ``▁``.
"""

from __future__ import annotations

import re
from functools import lru_cache

BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
SCHEMES = ("byte_level", "metaspace", "plain")


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


def detect_scheme(tokens) -> str:
    """``byte_level`` if any token uses GPT-2 byte stand-ins for space or newline
    (``Ġ``, ``Ċ``), ``metaspace`` if any uses ``▁``, else ``plain``."""
    byte_level = metaspace = False
    for t in tokens:
        if "Ġ" in t or "Ċ" in t:
            byte_level = True
        if "▁" in t:
            metaspace = True
    if byte_level and metaspace:
        raise ValueError("tokens mix byte-level (Ġ) and Metaspace (▁) markers; pass scheme=")
    return "byte_level" if byte_level else "metaspace" if metaspace else "plain"


def _utf8_latin1(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def canonical_token(token: str, scheme: str, specials: frozenset = frozenset()) -> str:
    """One token as latin-1 bytes; special tokens (``specials``) spell as themselves."""
    if token in specials:
        return token
    if scheme == "byte_level":
        dec = _byte_decoder()
        if all(ch in dec for ch in token):
            return bytes(dec[ch] for ch in token).decode("latin-1")
        return _utf8_latin1(token)
    m = BYTE_FALLBACK.match(token)
    if m:
        return chr(int(m.group(1), 16))
    if scheme == "metaspace":
        token = token.replace("▁", " ")
    return _utf8_latin1(token)


def canonical_tokens(tokens, scheme: str | None = None, specials=()) -> list[str]:
    """Canonical spelling of each token (see the module docstring)."""
    tokens = list(tokens)
    scheme = scheme or detect_scheme(tokens)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown token scheme {scheme!r}; known: {list(SCHEMES)}")
    sp = frozenset(specials)
    return [canonical_token(t, scheme, sp) for t in tokens]


def tokenizer_scheme(tokenizer) -> str:
    """The token scheme of a transformers tokenizer, from its vocabulary."""
    return detect_scheme(tokenizer.get_vocab())
