"""Model architectures the estimator builds without weights: the shipped config files, a config.json path or a
checkpoint folder, and the tiny test model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.paths import PACKAGE_DIR

ARCHITECTURES_DIR = PACKAGE_DIR / "architectures"
TEST_ARCHITECTURE = "tiny-llama"


def builtin_architectures() -> list[str]:
    """Names of the shipped architecture configs (plus the tiny test model)."""
    return sorted(path.stem for path in ARCHITECTURES_DIR.glob("*.json")) + [TEST_ARCHITECTURE]


def load_architecture(name: Any):
    """A transformers PretrainedConfig for a built-in name, a config.json file or a checkpoint folder (a config
    object is returned as is)."""
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(name, PretrainedConfig):
        return name
    if name == TEST_ARCHITECTURE:
        from owlore_bench.models import tiny_llama_config

        return tiny_llama_config()
    path = ARCHITECTURES_DIR / f"{name}.json" if "/" not in name and not name.endswith(".json") else Path(name)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        known = builtin_architectures()
        raise UserError(f"unknown architecture '{name}'.{did_you_mean(name, known)} Built-in: {', '.join(known)}; "
                        f"or pass the path of a model's config.json (or of its checkpoint folder)")
    try:
        values = json.loads(path.read_text())
        values = {key: value for key, value in values.items() if not key.startswith("_")}
        return AutoConfig.for_model(**values)
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not a usable transformers config.json ({str(error).splitlines()[0]})") from None
