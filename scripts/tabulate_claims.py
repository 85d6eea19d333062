"""The papers' claims on the tiny world: each claim's paired difference over seeds, its 95%
interval and a verdict (reproduced / not reproduced / inconclusive), as a table, a
Markdown page and a forest plot (fusekit.report.claims)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.io import read_table
from fusekit.report.claims import RESULT_COLUMNS, claims_table, write_claims

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument(
        "--results",
        required=True,
        help="long table (CSV or Parquet), one row per model x seed x world seed x metric: "
        f"columns {', '.join(RESULT_COLUMNS)}; an empty seed marks a seed-independent model",
    )
    p.add_argument(
        "--claims", type=json_arg, required=True, help="studies.<study>.claims (JSON list)"
    )
    p.add_argument("--study", required=True, help="the study whose rows and claims are used")
    p.add_argument(
        "--seed-independent",
        type=json_arg,
        default=[],
        help="JSON list of models that are one constant per world seed (sources, the target)",
    )
    p.add_argument("--out", required=True, help="claims table (.csv or .parquet)")
    p.add_argument("--markdown", help="Markdown page (claims.md)")
    p.add_argument("--figure", help="forest plot (claims.png)")
    a = p.parse_args()
    log = setup_logging()
    results = read_table(a.results, RESULT_COLUMNS)
    table = claims_table(results, a.claims, a.study, a.seed_independent, source=a.results)
    write_claims(table, a.out, a.markdown, a.figure)
    log.info(
        "claims of %s:\n%s",
        a.study,
        table[["claim", "mean_diff", "ci_low", "ci_high", "verdict"]].round(2).to_string(),
    )
