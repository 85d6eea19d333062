"""Has each variant's training converged? The loss of the last fifth of its final stage
against the fifth before, with a 95% interval and a verdict
(fusekit.report.convergence)."""

from pathlib import Path

from fusekit.cli import parser, setup_logging
from fusekit.io import read_table, write_table
from fusekit.report.convergence import convergence_table

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("models", nargs="+", help="variant model folders (train_log.csv inside)")
    p.add_argument("--window", type=float, default=0.2, help="window, share of the final stage")
    p.add_argument(
        "--tolerance", type=float, default=0.02, help="largest relative drop of a converged run"
    )
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    log = setup_logging()
    logs = {Path(d).name: read_table(Path(d) / "train_log.csv") for d in a.models}
    table = convergence_table(logs, a.window, a.tolerance)
    write_table(table, a.out)
    log.info("convergence:\n%s", table.to_string(index=False))
