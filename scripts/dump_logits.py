"""Teacher-forced sparse top-k dump of one model: on (prompt, reference) for training
mode, or on the voted outputs it produced for inference mode."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.training_mode import dump_reference_logits, dump_voted_logits

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--mode", choices=["reference", "voted"], required=True)
    p.add_argument("--input", required=True, help="prompt set (reference) or votes (voted) Parquet")
    p.add_argument("--model", required=True, help="model name")
    p.add_argument("--model-path", required=True, help="hub id or local directory")
    p.add_argument("--spec", type=json_arg, required=True, help="models.<name> config (JSON)")
    p.add_argument("--logits", type=json_arg, required=True, help="logits config (JSON)")
    p.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="output Parquet dump")
    a = p.parse_args()
    setup_logging()
    dump = dump_reference_logits if a.mode == "reference" else dump_voted_logits
    dump(a.input, a.model, a.model_path, a.spec, a.logits, a.out, a.backend, a.threads)
