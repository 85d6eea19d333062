"""Map every token id of a source tokenizer to a target token id: special tokens by role,
then the same bytes, else the nearest by edit distance; writes a report beside the map."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.training_mode import build_vocab_map

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--source", required=True, help="source tokenizer (hub id or directory)")
    p.add_argument("--target", required=True, help="target tokenizer (hub id or directory)")
    p.add_argument(
        "--schemes",
        type=json_arg,
        default=[None, None],
        help="JSON [source, target] token schemes (byte_level, metaspace, plain; null: read "
        "from the tokenizer)",
    )
    p.add_argument(
        "--out", required=True, help="output Parquet: source_id, target_id, exact, distance"
    )
    p.add_argument("--report", help="output JSON report (default: beside --out)")
    a = p.parse_args()
    setup_logging()
    build_vocab_map(a.source, a.target, a.out, *a.schemes, report_out=a.report)
