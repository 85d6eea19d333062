"""Write the AlpacaEval and Arena-Hard v0.1 evaluation sets (records, questions, baseline
answers and the prompt sets that models answer) into one directory.

Tiny world: --corpus. Paper scale: --alpaca-reference, --arena-questions, --arena-baseline."""

from fusekit.chat_eval import build_chat_eval_sets
from fusekit.cli import parser, setup_logging

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--corpus", help="tiny world: corpus Parquet (its eval split is used)")
    p.add_argument(
        "--alpaca-reference",
        help="paper scale: AlpacaEval reference records JSON, or 'hub' (gpt4_turbo outputs)",
    )
    p.add_argument("--arena-questions", help="paper scale: arena-hard-v0.1 question.jsonl")
    p.add_argument("--arena-baseline", help="paper scale: model_answer/<baseline>.jsonl")
    p.add_argument(
        "--per-skill", type=int, default=None, help="tiny world: the first N eval prompts per skill"
    )
    p.add_argument("--out", required=True, help="output directory")
    a = p.parse_args()
    setup_logging()
    if not a.corpus and not (a.alpaca_reference and a.arena_questions and a.arena_baseline):
        p.error("give --corpus, or all of --alpaca-reference --arena-questions --arena-baseline")
    build_chat_eval_sets(
        a.out, a.corpus, a.alpaca_reference, a.arena_questions, a.arena_baseline, a.per_skill
    )
