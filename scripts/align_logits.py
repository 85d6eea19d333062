"""Carry a source model's top-k dump onto the target model's tokenization (FuseLLM's rule)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.training_mode import align_dump

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--dump", required=True, help="source dump Parquet")
    p.add_argument("--source", required=True, help="source tokenizer (hub id or directory)")
    p.add_argument("--target", required=True, help="target tokenizer (hub id or directory)")
    p.add_argument("--vocab-map", required=True, help="vocabulary map Parquet")
    p.add_argument(
        "--schemes",
        type=json_arg,
        default=[None, None],
        help="JSON [source, target] token schemes (null: read from the tokenizer)",
    )
    p.add_argument(
        "--max-text-mismatch-share",
        type=float,
        default=0.05,
        help="stop when more than one row, and more than this share of rows, spell "
        "different text in the two tokenizations (beyond Unicode normalisation)",
    )
    p.add_argument("--out", required=True, help="aligned dump Parquet (target vocabulary)")
    a = p.parse_args()
    setup_logging()
    align_dump(
        a.dump, a.source, a.target, a.vocab_map, a.out, a.max_text_mismatch_share, *a.schemes
    )
