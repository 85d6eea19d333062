"""Join per-model evaluation tables into results/tiny/world/skill_accuracy.csv."""

from fusekit.cli import parser, setup_logging
from fusekit.tiny.world import tabulate_skill_accuracy

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("parts", nargs="+", help="per-model CSV tables")
    a = p.parse_args()
    log = setup_logging()
    t = tabulate_skill_accuracy(a.parts, a.out)
    wide = t.pivot_table(index=["role", "model"], columns="skill", values="accuracy")
    log.info("skill accuracy:\n%s", wide.round(3).to_string())
