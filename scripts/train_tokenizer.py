"""Train one tiny-world tokenizer and save it with save_pretrained."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.tiny.world import make_tokenizer

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--corpus", required=True, help="corpus Parquet")
    p.add_argument(
        "--spec", type=json_arg, required=True, help="tiny_world.tokenizers.<name> (JSON)"
    )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--filler-lines", type=int, required=True, help="pseudo-word lines to add")
    p.add_argument("--out", required=True, help="output tokenizer directory")
    a = p.parse_args()
    log = setup_logging()
    make_tokenizer(a.corpus, a.spec, a.seed, a.filler_lines, a.out)
    log.info("saved tokenizer to %s", a.out)
