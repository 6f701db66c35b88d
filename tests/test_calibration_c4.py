"""OWL's C4 calibration recipe (`calibration_file: c4`), checked against a copy of OWL's own loop."""

from __future__ import annotations

import gzip
import json
import random

import pytest
import torch

from owlore_bench.analysis import calibration
from owlore_bench.analysis.calibration import owl_windows, windows_for
from owlore_bench.errors import UserError


class WithBos:
    """A tokenizer stand-in that, like a HF tokenizer called with its defaults, puts a BOS id (1) first."""

    def __call__(self, text):
        return {"input_ids": [1] + [ord(char) for char in text]}


DOCUMENTS = [("short " * n)[: 3 * n] for n in range(1, 40)] + ["a long document " * 8, "another long one " * 9]


def owl_get_c4_windows(traindata, nsamples, seed, seqlen, tokenizer):
    """luuyin/OWL lib/data.py get_c4 @ dddb7a4, its training-window loop verbatim but for tensors -> lists."""
    random.seed(seed)
    trainloader = []
    for _ in range(nsamples):
        while True:
            i = random.randint(0, len(traindata) - 1)
            trainenc = tokenizer(traindata[i])["input_ids"]
            if len(trainenc) > seqlen:
                break
        i = random.randint(0, len(trainenc) - seqlen - 1)
        j = i + seqlen
        trainloader.append(trainenc[i:j])
    return trainloader


def test_owl_windows_equal_owls_get_c4_and_leave_the_global_random_state_alone():
    random.seed(123)
    before = random.random()
    random.seed(123)
    windows = owl_windows(DOCUMENTS, WithBos(), n=6, length=60, seed=0)
    assert random.random() == before  # the sweep's own draws are untouched
    assert windows.tolist() == owl_get_c4_windows(DOCUMENTS, 6, 0, 60, WithBos())
    assert windows.shape == (6, 60) and windows.dtype == torch.long


def test_too_short_a_corpus_is_one_line_not_a_hang():
    with pytest.raises(UserError, match="none longer than calibration_length 500"):
        owl_windows(["tiny"] * 3, WithBos(), n=1, length=500)


def test_c4_source_reads_the_shard_as_jsonl_gz(tmp_path, monkeypatch):
    shard = tmp_path / "c4-train.00000-of-01024.json.gz"
    with gzip.open(shard, "wt", encoding="utf-8") as handle:
        for doc in DOCUMENTS:
            handle.write(json.dumps({"text": doc, "url": "u", "timestamp": "t"}) + "\n")
    asked = []

    def fetch_file(spec):
        asked.append(spec)
        return shard, {"sha256": "abc"}

    monkeypatch.setattr("owlore_bench.datasets.hub.fetch_file", fetch_file)
    windows, source = windows_for("c4", WithBos(), 4, 60)
    assert asked == [calibration.OWL_C4_SHARD] and source.endswith("(sha256 abc)")
    assert windows.tolist() == owl_get_c4_windows(DOCUMENTS, 4, 0, 60, WithBos())


def test_a_window_never_reaches_a_documents_last_token_as_in_owl():
    """OWL cuts at randint(0, tokens - length - 1): the last token is never in a window (an off-by-one there
    changes every window it draws; a sequence match alone can miss it, since randint's bits often coincide)."""
    document = "abcdefgh" + "Z"  # BOS + 9 characters = 10 tokens; windows of 8 start at 0 or 1 only
    windows = owl_windows([document], WithBos(), n=64, length=8)
    assert ord("Z") not in windows.flatten().tolist()
    assert {row[0] for row in windows.tolist()} == {1, ord("a")}  # both allowed starts occur
