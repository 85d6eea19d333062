"""Win share of each source in training mode (MinCE) beside inference mode (the vote)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.training_mode import advantage_by_mode

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--mince", required=True, help="MinCE Parquet")
    p.add_argument("--votes", required=True, help="votes Parquet")
    p.add_argument("--sources", type=json_arg, required=True, help="source names (JSON list)")
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    setup_logging()
    advantage_by_mode(a.mince, a.votes, a.sources, a.out)
