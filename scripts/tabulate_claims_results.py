"""The claims run's long results table (one row per model x training seed x metric) from
its evaluation files: OpenLLM (every benchmark, their mean ``average`` and its standard
error within the evaluation, ``average_se``), AlpacaEval-2 (``lc_win_rate``,
``win_rate``) and Arena-Hard (``arena_hard``), each with a ``*_se`` row where known
(fusekit.report.claims.results_from_evaluations; the claims table shows it per side)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.io import write_table
from fusekit.report.claims import results_from_evaluations

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--study", required=True)
    p.add_argument(
        "--evaluations",
        type=json_arg,
        required=True,
        help="JSON list of {model, seed, kind, path}; seed null for a seed-independent "
        "model; kind openllm (default), alpaca_eval or arena_hard",
    )
    p.add_argument("--world-seed", type=int, required=True, help="the tiny world's seed")
    p.add_argument(
        "--arena-strong-weight",
        type=int,
        default=3,
        help="times a strong Arena-Hard verdict counts (evaluation.arena_hard.strong_weight)",
    )
    p.add_argument("--out", required=True, help="long results table (.csv or .parquet)")
    a = p.parse_args()
    log = setup_logging()
    table = results_from_evaluations(
        a.evaluations, a.study, a.world_seed, arena_weight=a.arena_strong_weight
    )
    write_table(table, a.out)
    log.info("%d rows for %d models", len(table), table.model.nunique())
