"""How often each advantage method (single RMs, the vote, the reference score) picks
each source, and how often two methods agree (ProFuser Figure 3)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.inference_mode import compare_methods

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--scores", nargs="+", required=True, help="reward score Parquet files")
    p.add_argument("--reference", nargs="+", required=True, help="reference score Parquet files")
    p.add_argument("--votes", required=True, help="votes Parquet")
    p.add_argument("--sources", type=json_arg, required=True, help="source names (JSON list)")
    p.add_argument("--agreement-out", required=True, help="output CSV of pairwise agreement")
    p.add_argument("--out", required=True, help="output CSV of shares per method and source")
    a = p.parse_args()
    setup_logging()
    compare_methods(a.scores, a.reference, a.votes, a.sources, a.out, a.agreement_out)
