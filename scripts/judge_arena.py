"""Arena-Hard v0.1 judgments of one model against the baseline, both games (Parquet)."""

from fusekit.chat_eval import judge_arena
from fusekit.cli import json_arg, parser, setup_logging

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--questions", required=True, help="question.jsonl")
    p.add_argument("--baseline-answers", required=True, help="model_answer/<baseline>.jsonl")
    p.add_argument("--generations", required=True, help="the model's generations Parquet")
    p.add_argument("--judge", type=json_arg, required=True, help="judges.<name> config (JSON)")
    p.add_argument("--cache-dir", help="judge call cache (kept across reruns)")
    p.add_argument("--attempts", type=int, default=2, help="judge turns to reach a verdict")
    p.add_argument(
        "--settings", type=json_arg, default={}, help="judge request settings (JSON object)"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--answers-out", help="also write the answers as model_answer JSONL")
    p.add_argument(
        "--match-prompts",
        action="store_true",
        help="the generations answer another set with the same prompts: match by prompt text",
    )
    p.add_argument("--out", required=True, help="output judgments Parquet")
    a = p.parse_args()
    setup_logging()
    judge_arena(
        a.questions,
        a.baseline_answers,
        a.generations,
        a.judge,
        a.cache_dir,
        a.out,
        a.answers_out,
        a.attempts,
        a.settings,
        a.threads,
        a.match_prompts,
    )
