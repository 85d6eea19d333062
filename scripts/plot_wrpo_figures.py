"""WRPO's figures from files the workflow wrote: the implicit rewards of y_ws, y_wt and
y_l over training for every variant of the alpha sweep (PNG), and the sweep itself:
AlpacaEval-2 LC / WR and reward accuracies against alpha_max (PNG and CSV)."""

import json

from fusekit.cli import parser, setup_logging
from fusekit.report.wrpo_figures import write_wrpo_figures

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--study", required=True, help="study name (figure titles)")
    p.add_argument("--alphas", required=True, help='JSON: variant -> alpha_max, e.g. {"WRPO": 0.1}')
    p.add_argument("--models", nargs="+", required=True, help="the variants' model folders")
    p.add_argument("--chat-eval", default="", help="the study's chat_eval.csv (optional)")
    p.add_argument("--dynamics-out", required=True, help="output reward-dynamics PNG")
    p.add_argument("--sweep-out", required=True, help="output alpha-sweep PNG")
    p.add_argument("--out", required=True, help="output alpha-sweep CSV")
    a = p.parse_args()
    log = setup_logging()
    alphas = json.loads(a.alphas)
    logs = {m.rstrip("/").rsplit("/", 1)[-1]: f"{m}/train_log.csv" for m in a.models}
    sweep = write_wrpo_figures(
        a.study, alphas, logs, a.chat_eval or None, a.dynamics_out, a.sweep_out, a.out
    )
    log.info("\n%s", sweep.to_string(index=False))
