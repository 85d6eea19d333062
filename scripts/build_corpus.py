"""Write the tiny world's synthetic instruction corpus (all splits) to Parquet."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.tiny.world import make_corpus

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--spec", type=json_arg, required=True, help="tiny_world.corpus config (JSON)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output Parquet file")
    a = p.parse_args()
    log = setup_logging()
    df = make_corpus(a.spec, a.seed, a.out)
    log.info("wrote %d examples to %s\n%s", len(df), a.out, df.groupby(["split", "skill"]).size())
