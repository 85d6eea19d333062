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
        "--evaluations", type=json_arg, required=True, help="row name -> evaluation JSON (JSON)"
    )
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    benchmarks = benchmark_dict(a.benchmarks)
    log = setup_logging()
    table = tabulate(a.name, a.spec, benchmarks, a.evaluations, a.out)
    log.info("reproduced:\n%s", wide(table).round(2).to_string())
