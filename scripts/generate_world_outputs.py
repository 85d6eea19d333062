"""Greedy outputs of one tiny-world model on the first prompts of each skill of a corpus
split, marked right or wrong: the material the world's reward models learn to judge
(fusekit.tiny.world.generate_world_outputs)."""

from fusekit.cli import parser, setup_logging
from fusekit.tiny.world import generate_world_outputs

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--name", required=True, help="the model's name (the model column)")
    p.add_argument("--corpus", required=True, help="corpus Parquet")
    p.add_argument("--split", default="pretrain", help="corpus split to draw prompts from")
    p.add_argument("--per-skill", type=int, required=True, help="prompts per skill")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", required=True, help="output Parquet")
    a = p.parse_args()
    log = setup_logging()
    t = generate_world_outputs(
        a.model_dir,
        a.corpus,
        a.split,
        a.per_skill,
        a.max_new_tokens,
        a.batch_size,
        a.out,
        a.name,
    )
    log.info(
        "%s: %d outputs, right per skill:\n%s",
        a.name,
        len(t),
        t.groupby("skill").correct.mean().round(3).to_string(),
    )
