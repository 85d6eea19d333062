"""Evaluate one model on the OpenLLM benchmarks with lm-eval's Python API."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.eval.openllm import evaluate_to_file

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--model-path", required=True, help="model directory or hub id")
    p.add_argument(
        "--benchmarks", type=json_arg, required=True, help="evaluation.openllm.benchmarks (JSON)"
    )
    p.add_argument(
        "--settings",
        type=json_arg,
        default={},
        help="evaluation.openllm without benchmarks, plus seed and trust_remote_code (JSON)",
    )
    p.add_argument("--out", required=True, help="output JSON")
    a = p.parse_args()
    log = setup_logging()
    result = evaluate_to_file(a.model_path, a.benchmarks, a.settings, a.out)
    for b in result["benchmarks"].values():
        log.info(
            "%s (%s, %d-shot %s): %.2f",
            b["label"],
            b["task"],
            b["num_fewshot"],
            b["metric"],
            b["value"],
        )
