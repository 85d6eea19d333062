"""verification.md: every table cell of a study, reproduced vs reported, with its 95% interval
and a verdict (within tolerance / differs / not distinguishable at this sample size), for the
tables (OpenLLM, other benchmark suites, chat columns; columns not run with their reasons)
and the chat evaluation (AlpacaEval-2, Arena-Hard)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.report.tables import benchmark_dict
from fusekit.report.verify import write_verification

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--tables", type=json_arg, required=True, help="table name -> CSV (JSON)")
    p.add_argument("--titles", type=json_arg, default={}, help="table name -> title (JSON)")
    p.add_argument(
        "--benchmarks",
        type=json_arg,
        required=True,
        help="evaluation.openllm.benchmarks: JSON list of specs with a key, in order",
    )
    p.add_argument(
        "--suites",
        type=json_arg,
        default={},
        help="evaluation.suites the tables read (JSON; benchmarks as evaluated)",
    )
    p.add_argument(
        "--not-run",
        type=json_arg,
        default={},
        help="table name -> column label -> why it has no reproduced value (JSON)",
    )
    p.add_argument("--tolerance", type=float, required=True, help="points")
    p.add_argument("--scale", required=True, help="paper or tiny")
    p.add_argument("--chat-eval", help="the study's chat_eval.csv (AlpacaEval-2 and Arena-Hard)")
    p.add_argument(
        "--chat-spec",
        type=json_arg,
        default=None,
        help="studies.<study>.chat_table (JSON): reported CSV and rows; null: no reported values",
    )
    p.add_argument(
        "--verification",
        type=json_arg,
        default=None,
        help="fusekit.workflow.verification_spec (JSON): the study's assumptions and the "
        "verdict of a cell without a reported number",
    )
    p.add_argument("--out", required=True, help="output markdown")
    a = p.parse_args()
    benchmarks = benchmark_dict(a.benchmarks)
    log = setup_logging()
    text = write_verification(
        a.study,
        a.tables,
        a.titles,
        benchmarks,
        a.tolerance,
        a.scale,
        a.out,
        a.chat_eval,
        a.chat_spec,
        a.not_run,
        a.suites,
        a.verification,
    )
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    log.info("verdicts:%s", summary.rstrip())
