"""How good a study's inference-mode vote is on the tiny world: the share of voted
outputs that are right, and of votes that picked the skill's best source, per skill
(fusekit.tiny.world.vote_accuracy)."""

from fusekit.cli import parser, setup_logging
from fusekit.tiny.world import vote_accuracy

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--votes", required=True, help="the study's votes.parquet")
    p.add_argument("--corpus", required=True, help="the tiny world's corpus Parquet")
    p.add_argument("--world-table", required=True, help="skill_accuracy.csv")
    p.add_argument("--sources", nargs="+", required=True, help="the study's sources")
    p.add_argument("--study", required=True)
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    log = setup_logging()
    t = vote_accuracy(a.votes, a.corpus, a.world_table, a.sources, a.study, a.out)
    log.info("vote of %s:\n%s", a.study, t[t.skill == "all"].to_string(index=False))
