"""Map every token id of a source tokenizer to a target token id (exact, else nearest)."""

from fusekit.cli import parser, setup_logging
from fusekit.training_mode import build_vocab_map

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--source", required=True, help="source tokenizer (hub id or directory)")
    p.add_argument("--target", required=True, help="target tokenizer (hub id or directory)")
    p.add_argument(
        "--out", required=True, help="output Parquet: source_id, target_id, exact, distance"
    )
    a = p.parse_args()
    setup_logging()
    build_vocab_map(a.source, a.target, a.out)
