"""MinCE: per prompt, the source with the lowest cross-entropy on the reference answer."""

from fusekit.cli import parser, setup_logging
from fusekit.training_mode import select_mince

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--out", required=True, help="output Parquet: prompt_id, winner, ce_<source>...")
    p.add_argument("dumps", nargs="+", help="reference dumps of every source")
    a = p.parse_args()
    setup_logging()
    select_mince(a.dumps, a.out)
