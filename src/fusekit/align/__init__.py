"""Cross-tokenizer alignment, as FuseLLM does it, in pure functions (numpy, no torch).

- :func:`align_tokens` aligns two tokenizations of one text by dynamic
  programming with edit-distance costs between token strings (space markers
  removed) and returns the path as (i, j) index pairs;
- :func:`map_vocab` maps every source token id to a target token id (exact
  string match, else minimum edit distance);
- :func:`align_topk` carries a source model's sparse top-k distributions,
  one per token they predict, onto the target's tokenization of the same text.

Token strings of different schemes (byte-level ``Ġ``, Metaspace ``▁``,
byte-fallback ``<0x..>``) are compared through :func:`canonical_tokens`,
which spells every token as the bytes it stands for.
"""

from fusekit.align.distributions import AlignedTopK, align_topk
from fusekit.align.dp import align_tokens, align_tokens_reference
from fusekit.align.tokens import canonical_tokens, detect_scheme
from fusekit.align.vocab import map_vocab

__all__ = [
    "AlignedTopK",
    "align_tokens",
    "align_tokens_reference",
    "align_topk",
    "canonical_tokens",
    "detect_scheme",
    "map_vocab",
]
