"""The documentation a newcomer reads: every file it cites exists, its tables render, the
config keys the how-to pages walk through are keys of config/schema.yaml, and LICENSE is the
license pyproject.toml declares."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
HOWTO = sorted((ROOT / "docs" / "howto").glob("*.md"))
# pages written for this repository: their backticked repo paths and fusekit names are
# checked too (docs/FORMATS.md and docs/PREFERENCE_FUSION.md are research notes that quote
# other repositories' paths, so only their links are)
OWN_PAGES = [README, ROOT / "docs" / "cluster.md", *HOWTO]
TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} - {
    "results",
    "logs",
}
# files the workflow writes (cited by name, not shipped)
OUTPUT_NAMES = {"verification.md"}
CONFIG_ROOTS = (
    "models",
    "reward_models",
    "datasets",
    "studies",
    "evaluation",
    "tiny_world",
    "logits",
    "backends",
    "cluster",
    "judges",
    "rewards",
    "reference_score",
    "$defs",
)
# the license texts pyproject may name, by SPDX id, and phrases only that text has
LICENSE_PHRASES = {
    "Apache-2.0": (
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ),
}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a shell example is not a citation)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _links(text: str) -> list[str]:
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", _prose(text))


@pytest.mark.parametrize("page", [README, *DOCS], ids=_rel)
def test_every_relative_link_exists(page):
    missing = []
    for target in _links(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            missing.append(target)
    assert not missing, f"{_rel(page)} links to files the repository lacks: {missing}"


def _code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", _prose(text))


def _repo_path(span: str) -> str | None:
    """``span`` as a repository path when it looks like one: its first component is a
    top-level entry of the repository and it holds no placeholder."""
    span = span.split("::", 1)[0].rstrip("/")
    if re.search(r"[<>{}*\[\]\s$=']", span) or span.startswith(("/", "..")):
        return None
    first = span.split("/", 1)[0]
    if first not in TOP_LEVEL or (first == span and "." not in span and first != "Snakefile"):
        return None  # a bare word that happens to name a folder (e.g. "config")
    return span


@pytest.mark.parametrize("page", OWN_PAGES, ids=_rel)
def test_every_cited_repo_path_exists(page):
    missing = sorted(
        {
            path
            for span in _code_spans(page.read_text())
            if (path := _repo_path(span)) and not (ROOT / path).exists()
        }
    )
    assert not missing, f"{_rel(page)} cites paths the repository lacks: {missing}"


def test_every_markdown_file_the_readme_names_exists():
    names = set(re.findall(r"(?<![\w/.<>{}*-])([\w./-]+\.md)\b", _prose(README.read_text())))
    missing = sorted(
        n for n in names if n not in OUTPUT_NAMES and not (ROOT / n).exists() and "/" in n
    )
    bare = sorted(n for n in names if "/" not in n and n not in OUTPUT_NAMES | {"README.md"})
    assert not missing, f"README.md names files the repository lacks: {missing}"
    assert not bare, f"README.md names files without their path (give docs/...): {bare}"


@pytest.mark.parametrize("page", OWN_PAGES, ids=_rel)
def test_every_fusekit_name_resolves(page):
    bad = []
    for span in _code_spans(page.read_text()):
        m = re.fullmatch(r"(fusekit(?:\.\w+)+)(\(.*\))?", span)
        if not m:
            continue
        parts = m.group(1).split(".")
        obj, i = None, len(parts)
        while i > 0:  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ModuleNotFoundError:
                i -= 1
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        if obj is None:
            bad.append(m.group(1))
    assert not bad, f"{_rel(page)} names fusekit objects that do not exist: {bad}"


def _tables(text: str) -> list[list[tuple[int, str]]]:
    """Runs of lines starting with '|' (outside code fences), with line numbers."""
    blocks, run = [], []
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.lstrip().startswith("|"):
            run.append((n, line))
            continue
        if run:
            blocks.append(run)
        run = []
    return blocks + ([run] if run else [])


@pytest.mark.parametrize("page", [README, *DOCS], ids=_rel)
def test_markdown_tables_render(page):
    """Each run of table rows starts with a header and a separator row: a blank line inside
    a table cuts it, and the rows after it, having no separator, render as a paragraph of
    pipes (two tables one after the other each have their own header and pass)."""
    text = page.read_text()
    for block in _tables(text):
        (first, header), *rest = block
        assert rest and re.fullmatch(r"\s*\|(\s*:?-{3,}:?\s*\|)+\s*", rest[0][1]), (
            f"{_rel(page)}:{first}: a table row with no header and separator above it "
            f"(a blank line before it?): {header[:80]!r}"
        )
        width = header.count("|")
        assert rest[0][1].count("|") == width, f"{_rel(page)}:{first}: separator width"


def _schema_node(node: dict, defs: dict) -> dict:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    return node


def _schema_has(node: dict, parts: list[str], defs: dict) -> bool:
    """Whether the dotted key ``parts`` exists under ``node``: ``<name>`` stands for any
    key (a property or an additionalProperties entry), ``properties`` is skipped (a path
    into $defs), and a concrete name also matches an additionalProperties entry."""
    node = _schema_node(node, defs)
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    if head == "properties":
        return _schema_has(node, rest, defs)
    if "items" in node and "properties" not in node:
        return _schema_has(node["items"], parts, defs)
    props = node.get("properties", {})
    extra = node.get("additionalProperties")
    options = []
    if head.startswith("<") and head.endswith(">"):
        options = list(props.values())
    elif head in props:
        options = [props[head]]
    if isinstance(extra, dict) and (head.startswith("<") or head not in props):
        options.append(extra)
    return any(_schema_has(o, rest, defs) for o in options)


@pytest.mark.parametrize("page", [README, *HOWTO], ids=_rel)
def test_cited_config_keys_exist_in_the_schema(page):
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    defs = schema["$defs"]
    bad = []
    for span in _code_spans(page.read_text()):
        if not re.fullmatch(r"[\w$]+(\.[\w<>-]+)+", span):
            continue
        parts = span.split(".")
        if parts[0] not in CONFIG_ROOTS:
            continue
        start = {"properties": defs} if parts[0] == "$defs" else schema
        if not _schema_has(start, parts[1:] if parts[0] == "$defs" else parts, defs):
            bad.append(span)
    assert not bad, f"{_rel(page)} cites config keys config/schema.yaml lacks: {bad}"


def test_readme_links_every_howto_page():
    links = {(ROOT / t.split("#", 1)[0]).resolve() for t in _links(README.read_text())}
    assert HOWTO, "docs/howto/ has no page"
    unlinked = [_rel(p) for p in HOWTO if p.resolve() not in links]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_license_file_matches_pyproject():
    license_ = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    spdx = license_ if isinstance(license_, str) else license_.get("text")
    assert spdx in LICENSE_PHRASES, f"pyproject.toml's license {spdx!r}: no known text to check"
    text = (ROOT / "LICENSE").read_text()
    missing = [p for p in LICENSE_PHRASES[spdx] if p not in text]
    assert not missing, f"LICENSE is not the {spdx} text: lacks {missing}"
