"""Write a prompt set (prompt_id, prompt, reference, system, source) to Parquet.

Kinds: tiny_corpus (needs --corpus), orca_best and hub_prompts (the hub), local_file (the
file in the spec's path); see fusekit.data.prepare_prompts."""

from pathlib import Path

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.data import prepare_prompts

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--spec", type=json_arg, required=True, help="datasets.<name> config (JSON)")
    p.add_argument("--seed", type=int, required=True, help="seed of the random sample")
    p.add_argument("--corpus", help="tiny-world corpus Parquet (kind tiny_corpus)")
    p.add_argument(
        "--name",
        help="the data set's key, labels errors (default: the name of --out, less .parquet)",
    )
    p.add_argument("--out", required=True, help="output Parquet")
    a = p.parse_args()
    log = setup_logging()
    df = prepare_prompts(a.spec, a.seed, a.out, a.corpus, a.name or Path(a.out).stem)
    log.info("wrote %d prompts to %s", len(df), a.out)
