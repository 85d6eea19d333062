"""Publish a study table as results/<table>.csv in the paper's layout (models as rows,
benchmarks as columns, each with its standard error) and the long form beside it."""

from fusekit.cli import parser, setup_logging
from fusekit.report.tables import publish

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("table", help="the study's long table CSV (results/<study>/<table>.csv)")
    p.add_argument("--out", required=True, help="output CSV in the paper's layout")
    p.add_argument("--long-out", required=True, help="output CSV, the long form (one cell a line)")
    a = p.parse_args()
    log = setup_logging()
    log.info("\n%s", publish(a.table, a.out, a.long_out).to_string(index=False))
