"""verification.md: every table cell of a study, reproduced vs reported, within tolerance."""

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
    p.add_argument("--tolerance", type=float, required=True, help="points")
    p.add_argument("--scale", required=True, help="paper or tiny")
    p.add_argument("--out", required=True, help="output markdown")
    a = p.parse_args()
    benchmarks = benchmark_dict(a.benchmarks)
    setup_logging()
    write_verification(a.study, a.tables, a.titles, benchmarks, a.tolerance, a.scale, a.out)
