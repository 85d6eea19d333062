"""Carry a source model's top-k dump onto the target model's tokenization."""

from fusekit.cli import parser, setup_logging
from fusekit.training_mode import align_dump

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--dump", required=True, help="source dump Parquet")
    p.add_argument("--source", required=True, help="source tokenizer (hub id or directory)")
    p.add_argument("--target", required=True, help="target tokenizer (hub id or directory)")
    p.add_argument("--vocab-map", required=True, help="vocabulary map Parquet")
    p.add_argument("--out", required=True, help="aligned dump Parquet (target vocabulary)")
    a = p.parse_args()
    setup_logging()
    align_dump(a.dump, a.source, a.target, a.vocab_map, a.out)
