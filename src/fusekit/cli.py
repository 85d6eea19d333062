"""Helpers shared by the thin scripts under ``scripts/``."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def json_arg(text: str):
    """argparse type: a JSON value given on the command line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:200]!r}") from err


def setup_logging() -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return logging.getLogger("fusekit")


def main() -> None:
    """``fusekit`` console entry: prints the version and where the workflow lives."""
    from fusekit import __version__

    print(f"fusekit {__version__}: run the workflow with `snakemake --profile profiles/tiny`")
