"""Generate responses of one model on one prompt set (Parquet out, throughput JSON beside it)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.generation import generate_responses

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--prompts", required=True, help="prompt set Parquet")
    p.add_argument("--model", required=True, help="model name (a key of models)")
    p.add_argument("--model-path", required=True, help="hub id or local directory")
    p.add_argument("--spec", type=json_arg, required=True, help="models.<name> config (JSON)")
    p.add_argument("--backend", choices=["transformers", "vllm"], required=True)
    p.add_argument("--seed", type=int, required=True, help="sampling seed when the config has none")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--throughput-out", help="JSON with generated tokens, seconds and tokens/s")
    p.add_argument("--out", required=True, help="output Parquet")
    a = p.parse_args()
    log = setup_logging()
    df = generate_responses(
        a.prompts,
        a.model,
        a.model_path,
        a.spec,
        a.backend,
        a.seed,
        a.out,
        a.threads,
        a.throughput_out,
    )
    log.info("wrote %d responses to %s", len(df), a.out)
