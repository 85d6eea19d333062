"""Tiny world: judge the gamed (concise, verbose) reference outputs against the reference and
write them in the format of AlpacaEval's df_gamed.csv, for the length-controlled win rate."""

from fusekit.chat_eval import build_lc_reference
from fusekit.cli import json_arg, parser, setup_logging

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--reference", required=True, help="AlpacaEval reference records JSON")
    p.add_argument("--gamed", nargs="+", required=True, help="gamed outputs (records JSON)")
    p.add_argument("--judge", type=json_arg, required=True, help="judges.<name> config (JSON)")
    p.add_argument("--cache-dir", help="judge and annotation caches (kept across reruns)")
    p.add_argument("--annotator", help="alpaca_eval annotator config name")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="output CSV (df_gamed.csv format)")
    a = p.parse_args()
    setup_logging()
    build_lc_reference(
        a.reference, a.gamed, a.judge, a.cache_dir, a.out, a.annotator, threads=a.threads
    )
