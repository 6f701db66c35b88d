"""The measured ledger: what each category counts, on tiny models (exact byte arithmetic)."""

from __future__ import annotations

import weakref

import pytest
import torch

from owlore_bench.memory.ledger import (
    ActivationCounter,
    MemoryLedger,
    gradient_bytes,
    optimizer_bytes,
    storage_key,
    weight_bytes,
)
from owlore_bench.models import tiny_llama


class TransposedLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(8, 16))

    def forward(self, x):
        return torch.relu(x @ self.weight.t())  # saves x, a view of the weight, and relu's output


def test_activations_exclude_parameters_and_their_views():
    model = TransposedLinear()
    x = torch.randn(4, 16)
    with ActivationCounter(model) as counter:
        model(x).sum().backward()
    assert counter.bytes == x.nbytes + 4 * 8 * 4  # x and relu's (4, 8) fp32 output; the weight view is excluded


def test_activations_count_a_storage_once():
    model = TransposedLinear()
    x = torch.randn(4, 16)
    with ActivationCounter(model) as counter:
        (model(x) * 2).sum().backward()
        (model(x[:2]) * 2).sum().backward()  # x[:2] is a view of x: same storage
    assert x.nbytes in counter.saved.values()
    assert sum(1 for key in counter.saved if key == storage_key(x)) == 1


def test_an_activation_saved_twice_is_counted_once():
    x = torch.randn(4, 16, requires_grad=True)  # x * x saves x for both operands
    with ActivationCounter(torch.nn.Linear(1, 1)) as counter:
        (x * x).sum().backward()
    assert counter.bytes == x.nbytes == 4 * 16 * 4


@pytest.mark.parametrize("offload", [None, "assumed", "host"])
def test_a_forward_without_backward_frees_its_saved_outputs(offload):
    """exp saves its own output: a pack hook that kept the tensor itself would tie it to its grad_fn, a cycle no
    gc frees, so a forward under the counter that never runs backward (an aborted step) would leak it."""
    x = torch.randn(3, 4, requires_grad=True)
    with ActivationCounter(torch.nn.Linear(1, 1), offload=offload) as counter:
        output = torch.exp(x)
    alive = weakref.ref(output)
    del output
    assert alive() is None and counter.bytes + counter.offloaded_bytes > 0
    with ActivationCounter(torch.nn.Linear(1, 1), offload=offload):
        output = torch.exp(x)
    output.sum().backward()  # the detached saved output still gives exp's gradient
    assert torch.equal(x.grad, torch.exp(x).detach())


def test_two_parameters_cut_from_one_buffer_are_one_storage():
    flat = torch.zeros(16)  # 64 bytes
    model = torch.nn.Module()
    model.a, model.b = torch.nn.Parameter(flat[:8]), torch.nn.Parameter(flat[8:])
    assert model.a.untyped_storage().data_ptr() == model.b.untyped_storage().data_ptr()
    assert weight_bytes(model) == 64  # not 2 x 64
    model.a.grad, model.b.grad = (g := torch.zeros(16))[:8], g[8:]
    assert gradient_bytes(model) == 64


def test_optimizer_state_that_aliases_one_buffer_is_counted_once():
    model = torch.nn.Linear(4, 2, bias=True)
    optimizer = torch.optim.AdamW(model.parameters())
    moments = torch.zeros(10)  # 40 bytes: weight (8) + bias (2)
    optimizer.state[model.weight] = {"exp_avg": moments[:8].view(2, 4)}
    optimizer.state[model.bias] = {"exp_avg": moments[8:]}
    assert optimizer_bytes(optimizer) == 40


def test_checkpointing_counts_the_kept_layer_inputs():
    model, _ = tiny_llama()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    ids = torch.randint(0, 256, (2, 16))
    with ActivationCounter(model) as counter:
        model(input_ids=ids, labels=ids).loss.backward()
    hidden_state_bytes = 2 * 16 * model.config.hidden_size * 4
    # every checkpointed layer keeps its input hidden states (4 layers), plus logits and loss outside the layers
    assert counter.bytes >= model.config.num_hidden_layers * hidden_state_bytes
    plain, _ = tiny_llama()
    with ActivationCounter(plain) as full:
        plain(input_ids=ids, labels=ids).loss.backward()
    assert counter.bytes < full.bytes


def test_tied_weights_are_counted_once():
    model, _ = tiny_llama(tie_word_embeddings=True)
    distinct = {id(p): p for p in model.parameters()}
    assert weight_bytes(model) == sum(p.nbytes for p in distinct.values())
    assert weight_bytes(model) < sum(p.nbytes for _, p in model.named_parameters(remove_duplicate=False))


def test_ledger_step_records_every_category():
    model, _ = tiny_llama()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ledger = MemoryLedger(model, optimizer)
    ledger.begin_step()
    ids = torch.randint(0, 256, (2, 16))
    with ledger.forward():
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    ledger.after_backward()
    assert gradient_bytes(model) == weight_bytes(model)
    optimizer.step()
    row = ledger.end_step()
    params = list(model.parameters())
    assert row["mem_weights_bytes"] == sum(p.nbytes for p in params)
    assert row["mem_gradients_bytes"] == row["mem_weights_bytes"]
    assert row["mem_optimizer_bytes"] == 2 * row["mem_weights_bytes"] + 4 * len(params)  # m, v and a step each
    assert row["mem_activations_bytes"] > 0
    assert row["mem_total_bytes"] == sum(row[f"mem_{c}_bytes"] for c in ("weights", "gradients", "optimizer",
                                                                          "activations"))
    assert row["mem_rss_bytes"] > row["mem_total_bytes"]


def test_disabled_ledger_records_nothing():
    model, _ = tiny_llama()
    ledger = MemoryLedger(model, torch.optim.SGD(model.parameters(), lr=0.1), enabled=False)
    ledger.begin_step()
    with ledger.forward():
        model(input_ids=torch.randint(0, 256, (1, 4)))
    ledger.after_backward()
    assert ledger.end_step() == {}


def test_galore_projector_is_optimizer_state():
    pytest.importorskip("galore_torch")
    from galore_torch import GaLoreAdamW

    weight = torch.nn.Parameter(torch.randn(64, 32))
    optimizer = GaLoreAdamW([{"params": [weight], "rank": 4, "update_proj_gap": 10, "scale": 1.0,
                              "proj_type": "std"}], lr=1e-3)
    weight.grad = torch.randn_like(weight)
    optimizer.step()
    # rows >= cols: projected on the right, states 64×4 (m and v), fp32. The projector is Vh[:4, :], a VIEW of
    # the SVD's full 32×32 Vh for fp32 weights (galore-torch copies only for other dtypes): the whole storage
    # stays alive, and the ledger counts what is really held.
    assert optimizer_bytes(optimizer) == 4 * (64 * 4 * 2 + 32 * 32)


def test_fake_tensors_have_distinct_storage_keys():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        a, b = torch.empty(4), torch.empty(4)
        assert storage_key(a) != storage_key(b)
        assert storage_key(a) == storage_key(a[:2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA fields and snapshot need a CUDA GPU")
def test_cuda_fields_and_snapshot(tmp_path):
    model, _ = tiny_llama()
    model = model.cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    snapshot = tmp_path / "snap.pickle"
    ledger = MemoryLedger(model, optimizer, cuda_snapshot=snapshot)
    for _ in range(2):
        ledger.begin_step()
        ids = torch.randint(0, 256, (2, 16), device="cuda")
        with ledger.forward():
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        ledger.after_backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        row = ledger.end_step()
    assert row["mem_cuda_max_allocated_bytes"] >= row["mem_weights_bytes"] + row["mem_optimizer_bytes"]
    assert row["mem_cuda_max_reserved_bytes"] >= row["mem_cuda_max_allocated_bytes"]
    assert snapshot.is_file() and snapshot.stat().st_size > 0


def test_a_sparse_gradient_counts_its_indices_and_values():
    """BAdam's ratio mode keeps sparse COO gradients, which have no storage of their own to read."""
    from owlore_bench.memory.ledger import gradient_bytes

    layer = torch.nn.Linear(4, 3, bias=False)
    indices, values = torch.tensor([[0, 2, 1], [1, 3, 0]]), torch.tensor([1.0, 2.0, 3.0])
    layer.weight.grad = torch.sparse_coo_tensor(indices, values, (3, 4))
    assert gradient_bytes(layer) == 2 * 3 * 8 + 3 * 4  # int64 indices (2 × nnz) + fp32 values (nnz)
