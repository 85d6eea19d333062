"""Draw one figure of a study as PNG (advantage by mode, advantage methods, loss curves,
a paper table against its reported values)."""

from pathlib import Path

from fusekit.cli import parser, setup_logging
from fusekit.io import read_table
from fusekit.report import figures
from fusekit.train.heldout import HELDOUT_FILE

KINDS = ("advantage_by_mode", "advantage_methods", "loss_curves", "table")

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--kind", choices=KINDS, required=True, help="which figure")
    p.add_argument(
        "inputs",
        nargs="+",
        help="advantage_by_mode: the CSV; advantage_methods: shares CSV then agreement CSV; "
        f"loss_curves: variant model folders (train_log.csv, {HELDOUT_FILE} if any, "
        "inside); table: the long table CSV",
    )
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--highlight", default="", help="table: the study's own method (a row name)")
    p.add_argument("--tolerance", type=float, help="table: draw the +- tolerance band (points)")
    p.add_argument("--out", required=True, help="output PNG")
    a = p.parse_args()
    setup_logging()
    if a.kind == "advantage_by_mode":
        figures.plot_advantage_by_mode(read_table(a.inputs[0]), a.out, a.title)
    elif a.kind == "advantage_methods":
        figures.plot_advantage_methods(
            read_table(a.inputs[0]), read_table(a.inputs[1]), a.out, a.title
        )
    elif a.kind == "loss_curves":
        logs = {Path(d).name: read_table(Path(d) / "train_log.csv") for d in a.inputs}
        heldout = {
            Path(d).name: read_table(Path(d) / HELDOUT_FILE)
            for d in a.inputs
            if (Path(d) / HELDOUT_FILE).exists()
        }
        figures.plot_loss_curves(logs, a.out, a.title, heldout)
    else:
        figures.plot_table_vs_reported(
            read_table(a.inputs[0]), a.out, a.title, a.highlight or None, a.tolerance
        )
