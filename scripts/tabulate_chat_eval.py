"""One study's chat-evaluation table: AlpacaEval-2 LC and raw win rates (with standard
errors) and the Arena-Hard win rate (with its 95% interval) per model (CSV)."""

from fusekit.chat_eval import tabulate_chat_eval
from fusekit.cli import parser, setup_logging

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--alpaca", nargs="+", required=True, help="AlpacaEval metrics JSON files")
    p.add_argument("--arena", required=True, help="Arena-Hard scores JSON (score_arena.py)")
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    log = setup_logging()
    log.info("\n%s", tabulate_chat_eval(a.alpaca, a.arena, a.out).to_string(index=False))
