"""fusekit: a reference harness for heterogeneous LLM fusion research."""

__version__ = "0.1.0"
