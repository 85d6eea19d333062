"""Has each variant's training converged? Per variant, the held-out loss of the final
stage's last epochs (where the model folder has heldout_log.csv) and the training loss
of the last fifth of the final stage against the fifth before (95% interval), each with a
verdict; the table's columns are documented in fusekit.report.convergence."""

from pathlib import Path

from fusekit.cli import parser, setup_logging
from fusekit.io import read_table, write_table
from fusekit.report.convergence import convergence_table
from fusekit.train.heldout import HELDOUT_FILE

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument(
        "models", nargs="+", help=f"variant model folders (train_log.csv, {HELDOUT_FILE} inside)"
    )
    p.add_argument("--window", type=float, default=0.2, help="window, share of the final stage")
    p.add_argument(
        "--tolerance", type=float, default=0.02, help="largest relative drop of a converged run"
    )
    p.add_argument(
        "--heldout-window",
        type=float,
        default=0.25,
        help="held-out window, share of the final stage's epochs (at least 2 epochs)",
    )
    p.add_argument(
        "--heldout-tolerance",
        type=float,
        default=0.02,
        help="largest relative change of held-out loss within the window of a converged run",
    )
    p.add_argument(
        "--require-heldout",
        action="store_true",
        help=f"refuse a model folder without {HELDOUT_FILE} (the study evaluates one)",
    )
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    log = setup_logging()
    logs = {Path(d).name: read_table(Path(d) / "train_log.csv") for d in a.models}
    heldout = {
        Path(d).name: read_table(Path(d) / HELDOUT_FILE)
        for d in a.models
        if (Path(d) / HELDOUT_FILE).exists()
    }
    table = convergence_table(
        logs,
        a.window,
        a.tolerance,
        heldout,
        a.heldout_window,
        a.heldout_tolerance,
        a.require_heldout,
    )
    write_table(table, a.out)
    log.info("convergence:\n%s", table.to_string(index=False))
