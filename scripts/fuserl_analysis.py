"""FuseRL's analyses of the trained models (fusekit.report.fuserl_analysis): preference
accuracy on held-out prompts (Figure 1), bias and variance of the models' preference
scores against a judge (Figure 5), and the ablation per PO objective from chat_eval.csv
(Figure 4). Each writes a CSV (--out) and a PNG (--figure)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.report import fuserl_analysis as fa

NEEDS = {
    "accuracy": ("heldout", "logps"),
    "bias": ("heldout", "logps", "beta", "judge_temperature", "judge"),
    "ablation": ("chat_eval", "variants"),
}

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("analysis", choices=sorted(NEEDS), help="accuracy, bias or ablation")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--figure", required=True, help="output PNG")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--heldout", help="accuracy, bias: the held-out groups Parquet")
    p.add_argument(
        "--logps",
        type=json_arg,
        help="accuracy, bias: model -> its per-row log-prob Parquet on the held-out groups "
        "(JSON object, in figure order)",
    )
    p.add_argument("--beta", type=float, help="bias: the model's Bradley-Terry scale")
    p.add_argument(
        "--judge-temperature", type=float, help="bias: the judge's BT temperature (score units)"
    )
    p.add_argument("--judge", help="bias: the judge's (reward model's) name")
    p.add_argument(
        "--judge-scores",
        nargs="*",
        default=[],
        help="bias: the judge's score tables when it is not the study's reward model",
    )
    p.add_argument("--chat-eval", help="ablation: the study's chat_eval.csv")
    p.add_argument("--variants", type=json_arg, help="ablation: studies.<study>.variants (JSON)")
    a = p.parse_args()
    missing = [f"--{k.replace('_', '-')}" for k in NEEDS[a.analysis] if getattr(a, k) is None]
    if missing:
        p.error(f"{a.analysis} needs {' '.join(missing)}")
    setup_logging()
    if a.analysis == "accuracy":
        fa.write_accuracy(a.heldout, a.logps, a.out, a.figure, a.title)
    elif a.analysis == "bias":
        fa.write_bias_variance(
            a.heldout,
            a.logps,
            a.out,
            a.figure,
            a.beta,
            a.judge_temperature,
            a.judge,
            a.judge_scores or None,
            a.title,
        )
    else:
        fa.write_ablation(a.chat_eval, a.variants, a.out, a.figure, a.title)
