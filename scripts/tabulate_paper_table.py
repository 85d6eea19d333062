"""One paper table: reproduced values beside the reported ones, cell by cell (long CSV)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.report.tables import benchmark_dict, tabulate, wide

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--name", required=True, help="table name (e.g. table1)")
    p.add_argument(
        "--spec", type=json_arg, required=True, help="studies.<study>.tables.<name> (JSON)"
    )
    p.add_argument(
        "--benchmarks",
        type=json_arg,
        required=True,
        help="evaluation.openllm.benchmarks: JSON list of specs with a key, in order",
    )
    p.add_argument(
        "--evaluations",
        type=json_arg,
        required=True,
        help="row name -> OpenLLM evaluation JSON (JSON; {} when the table has no OpenLLM column)",
    )
    p.add_argument(
        "--suites", type=json_arg, default={}, help="evaluation.suites (JSON): other suites"
    )
    p.add_argument(
        "--suite-evaluations",
        type=json_arg,
        default={},
        help="suite -> row name -> evaluation JSON (JSON), for the suites the table reads",
    )
    p.add_argument("--chat-eval", help="the study's chat_eval.csv, for a table with chat columns")
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    benchmarks = benchmark_dict(a.benchmarks)
    log = setup_logging()
    table = tabulate(
        a.name,
        a.spec,
        benchmarks,
        a.evaluations,
        a.out,
        a.suites,
        a.suite_evaluations,
        a.chat_eval,
    )
    log.info("reproduced:\n%s", wide(table).round(2).to_string())
