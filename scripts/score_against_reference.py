"""BLEU, ROUGE-L and BERTScore of every response against its reference answer (BLEU and
ROUGE-L over script-aware tokens: fusekit.rewards.reference.tokens)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.inference_mode import score_against_reference
from fusekit.rewards.reference import TOKENISATION

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--generations", required=True, help="generations Parquet")
    p.add_argument("--prompts", required=True, help="prompt set Parquet (has the references)")
    p.add_argument(
        "--weights", type=json_arg, required=True, help='{"bleu":..,"rouge":..,"bertscore":..}'
    )
    p.add_argument(
        "--encoder", required=True, help="BERTScore encoder (hub id, path or packaged name)"
    )
    p.add_argument("--out", required=True, help="output Parquet")
    a = p.parse_args()
    log = setup_logging()
    log.info("BLEU and ROUGE-L tokenisation: %s", TOKENISATION)
    score_against_reference(a.generations, a.prompts, a.weights, a.encoder, a.out)
