"""What each method touches follows the architecture (issue 29): LoRA's targets, GaLore's projected matrices (GPT-2's
Conv1D included, its side mirrored), BAdam's blocks, Adam-mini's blocks; a set-up failure is a failed run, not a
traceback; the memory table goes on past a method that is refused."""

from __future__ import annotations

import pytest
import torch
from architectures import LLAMA_SHAPED, one_step, tiny_config, tiny_model

from owlore_bench.cli import main
from owlore_bench.config import TrainConfig
from owlore_bench.errors import UserError
from owlore_bench.method import Method
from owlore_bench.methods.badam import badam_blocks
from owlore_bench.methods.lora import LLAMA_PROJECTIONS
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.train.galore_groups import projection_targets
from owlore_bench.train.layers import layer_names
from owlore_bench.train.loop import train

# 2-D weights per decoder layer, written out by hand from each family's modeling code.
MATRICES_PER_LAYER = {"llama": 7, "mistral": 7, "qwen2": 7, "qwen3": 7, "gemma2": 7, "gemma3": 7, "olmo2": 7,
                      "stablelm": 7, "granite": 7, "phi3": 4, "gpt_neox": 4, "gpt2": 4, "opt": 6, "falcon": 4}


# --- LoRA family ------------------------------------------------------------------------------------------------

def adapted_leaves(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}


@pytest.mark.parametrize("architecture", ["qwen3", "gemma3", "olmo2"])
def test_lora_keeps_the_seven_projections_on_llama_shaped_models(architecture):
    method = build_method("lora")
    assert adapted_leaves(method.prepare(tiny_model(architecture))) == set(LLAMA_PROJECTIONS)
    assert method.run_info()["target_modules"] == LLAMA_PROJECTIONS


@pytest.mark.parametrize("architecture, linear", [
    ("gpt2", {"c_attn", "c_proj", "c_fc"}), ("falcon", {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}),
    ("opt", {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"}), ("phi3", {"qkv_proj", "o_proj", "gate_up_proj",
                                                                               "down_proj"}),
])
def test_lora_default_is_all_linear_where_a_llama_projection_is_missing(architecture, linear):
    method = build_method("lora")
    model = method.prepare(tiny_model(architecture))
    assert adapted_leaves(model) == linear  # every linear layer of the decoder, not the output layer
    info = method.run_info()
    assert info["target_modules"] == "all-linear"
    assert sum(info["adapted_modules"].values()) == 4 * MATRICES_PER_LAYER[architecture]


def test_a_lora_target_that_matches_nothing_names_the_models_linear_modules():
    with pytest.raises(UserError) as refused:
        build_method("dora", {"target_modules": ["q_proj", "v_proj"]}).prepare(tiny_model("gpt_neox"))
    message = str(refused.value)
    assert "\n" not in message and message.startswith("dora.target_modules: ['q_proj', 'v_proj'] match no module")
    assert "dense, dense_4h_to_h, dense_h_to_4h, lm_head, query_key_value" in message
    assert "'0'" not in message


def test_lora_all_linear_on_a_llama_model_adds_nothing_but_linears():
    model = build_method("rslora", {"target_modules": "all-linear"}).prepare(tiny_llama()[0])
    assert adapted_leaves(model) == set(LLAMA_PROJECTIONS)  # lm_head, peft's output layer, stays out


# --- GaLore family ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("architecture", list(MATRICES_PER_LAYER))
def test_galore_projects_every_weight_matrix_of_every_decoder_layer(architecture):
    method = build_method("galore", {"rank": 8})
    model = method.prepare(tiny_model(architecture))
    targets = projection_targets(model)
    assert len(targets) == 4 * MATRICES_PER_LAYER[architecture]
    assert all(any(name.startswith(f"{layer}.") for layer in layer_names(model)) for name in targets)
    assert sum(method.run_info()["projected_matrices"].values()) == len(targets)


@pytest.mark.parametrize("proj_type, low_rank_side", [("right", "in"), ("left", "out")])
def test_a_conv1d_weight_is_projected_on_the_same_side_as_its_linear_twin(proj_type, low_rank_side):
    model, _, optimizer = one_step("galore", "gpt2", rank=4, proj_type=proj_type)
    checked = 0
    for module in model.modules():
        if type(module).__name__ == "Conv1D":
            state = optimizer.state[module.weight]["exp_avg"].t()  # stored in x out: back to (out x in)
            rows, cols = module.weight.shape[1], module.weight.shape[0]
            assert tuple(state.shape) == ((rows, 4) if low_rank_side == "in" else (4, cols))
            checked += 1
    assert checked == 16


def test_target_modules_narrow_the_projection_and_a_list_matching_nothing_is_refused():
    method = build_method("apollo", {"rank": 4, "target_modules": ["mlp"]})
    method.prepare(tiny_model("gpt2"))
    assert set(method.run_info()["projected_matrices"]) == {"transformer.h.*.mlp.c_fc.weight",
                                                           "transformer.h.*.mlp.c_proj.weight"}
    with pytest.raises(UserError) as refused:
        build_method("fira", {"target_modules": ["self_attn"]}).prepare(tiny_model("falcon"))
    assert "\n" not in str(refused.value) and str(refused.value).startswith("fira.target_modules: ['self_attn']")
    assert "dense_h_to_4h" in str(refused.value) and "query_key_value" in str(refused.value)


def test_layer_sampling_takes_target_modules_only_with_low_rank():
    with pytest.raises(UserError, match="only used with low_rank"):
        build_method("lisa", {"target_modules": ["mlp"]}).prepare(tiny_llama()[0])
    method = build_method("owlore", {"target_modules": ["mlp"], "sampling": "uniform", "gamma": 2})
    method.prepare(tiny_llama()[0])
    assert sum(method.run_info()["projected_matrices"].values()) == 4 * 3


# --- BAdam ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("include_embedding", [False, True])
@pytest.mark.parametrize("include_lm_head", [False, True])
def test_badam_blocks_equal_the_packages_own_on_llama(include_embedding, include_lm_head):
    import badam

    model = tiny_llama()[0]
    names = [name for name, _ in model.named_parameters()]
    infer = badam.BlockOptimizer.infer_param_groups
    assert badam_blocks(model, include_embedding, include_lm_head) == infer(None, names, include_embedding,
                                                                             include_lm_head)


@pytest.mark.parametrize("architecture", ["gpt2", "falcon", "opt"])
def test_badam_blocks_are_the_decoder_layers_then_the_embeddings(architecture):
    model = tiny_model(architecture)
    blocks = badam_blocks(model, include_embedding=True, include_lm_head=False)
    assert blocks[:4] == [[f"{name}."] for name in layer_names(model)] or blocks[-4:] == [[f"{name}."] for name in
                                                                                           layer_names(model)]
    embeddings = [block[0] for block in blocks if block[0].rstrip(".") not in layer_names(model)]
    assert embeddings and all(isinstance(model.get_submodule(prefix.rstrip(".")), torch.nn.Embedding)
                              for prefix in embeddings)


@pytest.mark.parametrize("architecture", ["gpt2", "gemma3"])
def test_badam_ratio_mode_freezes_the_models_own_embedding_and_output(architecture):
    model, _, _ = one_step("badam", architecture, mode="ratio")
    assert not model.get_input_embeddings().weight.requires_grad
    assert not model.get_output_embeddings().weight.requires_grad  # GPT-2's wte has no "embed"; tied (GPT-2, Gemma)


# --- Adam-mini --------------------------------------------------------------------------------------------------

def second_moment_blocks(optimizer, param) -> int:
    vmean = optimizer.state[param]["vmean"]
    return vmean.shape[0] if vmean.ndim else 1


def test_adam_mini_steps_exactly_as_the_package_does_on_llama():
    import adam_mini

    ours, _, _ = one_step("adam_mini", "llama")
    model = tiny_model("llama")
    config = model.config
    package = adam_mini.Adam_mini(named_parameters=model.named_parameters(), lr=1e-3, weight_decay=0.0,
                                  dim=config.hidden_size, n_heads=config.num_attention_heads, verbose=False)
    package.world_size = 1
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids, labels=ids).loss.backward()
    package.step()
    for (name, mine), theirs in zip(ours.named_parameters(), model.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("architecture, module, blocks", [
    ("gemma3", "model.layers.0.self_attn.q_proj", 4),  # head_dim 32 != 64 / 4: the package would cut 8
    ("gemma3", "model.layers.0.self_attn.k_proj", 1),
    ("qwen3", "model.layers.0.self_attn.k_proj", 2),
    ("gpt_neox", "gpt_neox.layers.0.attention.query_key_value", 12),  # q, k and v of 4 heads
    ("falcon", "transformer.h.0.self_attention.query_key_value", 6),  # 4 query heads, 1 key and 1 value head
    ("phi3", "model.layers.0.self_attn.qkv_proj", 8),  # 4 query heads, 2 key and 2 value heads
    ("opt", "model.decoder.layers.0.fc1", 128),  # one per output neuron
    ("opt", "model.decoder.final_layer_norm", 1),  # one per tensor (the package took it for an output layer)
    ("gpt_neox", "gpt_neox.final_layer_norm", 1),
    ("gpt_neox", "lm_head", 259),  # one per token
])
def test_adam_mini_blocks_are_heads_neurons_or_tensors_of_the_model(architecture, module, blocks):
    model, _, optimizer = one_step("adam_mini", architecture)
    assert second_moment_blocks(optimizer, model.get_submodule(module).weight) == blocks


def test_adam_mini_is_refused_in_one_line_on_conv1d_weights():
    with pytest.raises(UserError) as refused:
        build_method("adam_mini").prepare(tiny_model("gpt2"))
    assert "Conv1D" in str(refused.value) and "\n" not in str(refused.value)


# --- set-up failures are data -----------------------------------------------------------------------------------

class UnbuildableOptimizer(Method):
    """A method whose optimizer cannot be built (as BAdam's was on GPT-2 before issue 29)."""

    name = "unbuildable"

    def build_optimizer(self, model, lr, weight_decay):
        [].pop()  # the IndexError BAdam raised with no blocks


def test_an_optimizer_that_cannot_be_built_fails_the_run_with_its_error_logged(tmp_path, tiny_data):
    from owlore_bench.train.data import TrainingData

    model, tokenizer = tiny_llama()
    data = TrainingData.from_file(tiny_data, tokenizer, 32, "plain")
    summary = train(model, UnbuildableOptimizer(), data, TrainConfig(steps=2, batch_size=2, progress=False), tmp_path)
    assert summary["status"] == "failed" and summary["steps"] == 0
    assert summary["error"].startswith("IndexError: pop from empty list") and "\n" not in summary["error"]
    assert "[].pop()" in (tmp_path / "error.log").read_text()


def test_the_memory_table_goes_on_past_a_refused_method(tmp_path, capsys):
    config = tmp_path / "gpt2.json"
    tiny_config("gpt2").to_json_file(config)
    code = main(["memory", "--model", str(config), "--methods", "full_ft,adam_mini,lora", "--batch-size", "1",
                 "--seq-len", "8", "--dtype", "fp32", "--measure", "--measure-steps", "1", "--device", "cpu",
                 "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 1  # not everything could be estimated
    rows = {line.split()[0]: line for line in printed.splitlines() if line.split()[:1] in (["full_ft"], ["adam_mini"],
                                                                                           ["lora"])}
    assert "Conv1D" in rows["adam_mini"] and "failed" in rows["adam_mini"]
    assert rows["full_ft"].count(" ok") == 1 and rows["lora"].count(" ok") == 1  # estimated and measured
    assert "Conv1D" in (tmp_path / "out" / "memory.csv").read_text()


def test_the_tiny_architectures_cover_the_llama_shaped_families():
    assert set(LLAMA_SHAPED) <= set(MATRICES_PER_LAYER)
    assert all(MATRICES_PER_LAYER[name] == 7 for name in LLAMA_SHAPED)
