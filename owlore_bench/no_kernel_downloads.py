"""Import bitsandbytes (through galore-torch, apollo-torch, fira) without its network request for a hub kernel.

When bitsandbytes is first imported on a CPU with AVX512-BF16, its CPU backend asks the `kernels` package (which
transformers requires) for a 4-bit GEMM kernel from the Hugging Face hub ("kernels-community/quantization-
bitsandbytes"): a network request at import time, and "Failed to load CPU gemm_4bit_forward from kernels-community"
on stderr wherever the hub is unreachable. galore-torch imports bitsandbytes unconditionally (for its 8-bit
optimizer), so every GaLore-family run would pay it. The suite never runs 4-bit inference, so that first import
runs with huggingface_hub's documented offline switch on: `kernels` reads it as huggingface_hub.constants.
HF_HUB_OFFLINE and then resolves from the local cache only, making no request; bitsandbytes then falls back to its
own CPU code and logs why, which is not the user's to act on, so that one logger is quiet for the import.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

_FALLBACK_LOGGER = "bitsandbytes.backends.cpu.ops"  # logs the fallback after the (now local-only) kernel lookup


@contextlib.contextmanager
def no_kernel_downloads() -> Iterator[None]:
    """Run an import that may import bitsandbytes for the first time with hub kernel downloads off."""
    if "bitsandbytes" in sys.modules:
        yield
        return
    try:
        from huggingface_hub import constants
    except ImportError:  # without huggingface_hub there is no `kernels` fetch either
        yield
        return
    offline, logger = constants.HF_HUB_OFFLINE, logging.getLogger(_FALLBACK_LOGGER)
    level = logger.level
    constants.HF_HUB_OFFLINE = True
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = offline
        logger.setLevel(level)
