"""Write the tiny world's lm-eval tasks (JSONL data + task YAMLs) from the corpus."""

from fusekit.cli import parser, setup_logging
from fusekit.tiny.openllm_tasks import write_tasks

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--corpus", required=True, help="the tiny corpus Parquet")
    p.add_argument("--seed", type=int, required=True, help="seed of the distractor choices")
    p.add_argument("--out", required=True, help="task folder (lm-eval include_path)")
    a = p.parse_args()
    log = setup_logging()
    for task, n in write_tasks(a.corpus, a.out, a.seed).items():
        log.info("%s: %d documents", task, n)
