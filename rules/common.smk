# Config validation and helpers shared by every stage. Each stage keeps its own
# input functions at the top of its .smk file.
import json

from snakemake.utils import validate

from fusekit.config import check_references, tiny_model_path
from fusekit.determinism import derive_seed


validate(config, schema="../config/schema.yaml")
check_references(config)

SCALE = config["scale"]
WORLD = "results/tiny/world"
TINY = config.get("tiny_world", {})


def as_json(obj):
    """A config fragment as one shell-safe argument (quote it with :q)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def job_seed(*names):
    return derive_seed(config["seed"], *names)


def get_final_targets():
    """What `snakemake` with no target builds: the outputs of the finished stages."""
    targets = expand("results/data/{dataset}.parquet", dataset=sorted(config["datasets"]))
    if SCALE == "tiny":
        targets.append(f"{WORLD}/skill_accuracy.csv")
    return targets
