"""Reference log-probabilities: the frozen reference model's log pi(y|x) sums and token
counts for every response of a preference data set, computed once for training to read."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.train.reference import score_reference_logps

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--data", required=True, help="data table Parquet (sft rows or pairs)")
    p.add_argument(
        "--shape", required=True, choices=["sft", "pair", "quadruple", "weighted_sft", "group"]
    )
    p.add_argument("--model-path", required=True, help="reference model (hub id or directory)")
    p.add_argument("--spec", type=json_arg, required=True, help="models.<target> config (JSON)")
    p.add_argument("--max-length", type=int, required=True, help="training's max_length")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="Parquet: prompt_id, row, logp_sum, n_tokens")
    a = p.parse_args()
    setup_logging()
    score_reference_logps(
        a.data, a.shape, a.model_path, a.spec, a.max_length, a.out, a.batch_size, a.threads
    )
