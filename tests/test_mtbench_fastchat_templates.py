"""answer_template fastchat: FastChat's own prompts, stops and answer cleaning, checked against FastChat's code."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from owlore_bench.errors import UserError
from owlore_bench.models import byte_tokenizer, tiny_llama
from owlore_bench.mtbench import generate
from owlore_bench.mtbench.templates import FastChatStops, conversation_prompt, resolve_answer_template

model_adapter = pytest.importorskip("fastchat.model.model_adapter")
conversation = pytest.importorskip("fastchat.conversation")

QUESTION = {"question_id": 111, "category": "math", "turns": ["What is 3 + 4?", "Now double it."]}


def fastchat_prompts(model_id: str, first_answer: str) -> tuple[str, str]:
    """Turn-1 and turn-2 prompts as fastchat/llm_judge/gen_model_answer.py builds them."""
    conv = model_adapter.get_conversation_template(model_id)
    conv.append_message(conv.roles[0], QUESTION["turns"][0])
    conv.append_message(conv.roles[1], None)
    first = conv.get_prompt()
    conv.update_last_message(first_answer)
    conv.append_message(conv.roles[0], QUESTION["turns"][1])
    conv.append_message(conv.roles[1], None)
    return first, conv.get_prompt()


@pytest.mark.parametrize("model_id, fastchat_id, trained_with, expected", [
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", None, "fastchat:one_shot"),
    ("lora-seed-0", "alpaca-lora-seed-0", "alpaca", "fastchat:alpaca"),  # an alpaca-trained run
    ("meta-llama/Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b-chat-hf", None, "fastchat:llama-2"),
])
def test_turn_prompts_equal_fastchats(tmp_path, model_id, fastchat_id, trained_with, expected):
    run_dir = None
    if trained_with:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        (run_dir / "config.json").write_text(json.dumps({"data": {"template": trained_with}}))
    tokenizer = byte_tokenizer()
    prompt_format = resolve_answer_template("fastchat", tokenizer, model_id=model_id, run_dir=run_dir)
    assert prompt_format == expected
    first, second = fastchat_prompts(fastchat_id, "It is 7.")
    assert conversation_prompt(tokenizer, prompt_format, QUESTION["turns"], []) == first
    assert conversation_prompt(tokenizer, prompt_format, QUESTION["turns"], ["It is 7."]) == second
    named = resolve_answer_template(expected, tokenizer, model_id="anything")  # fastchat:NAME
    assert conversation_prompt(tokenizer, named, QUESTION["turns"], ["It is 7."]) == second


def fastchat_clean(tokenizer, conv, output_ids: list[int]) -> str:
    """The stop and cleaning steps of gen_model_answer.py, copied from it (output_ids after the prompt)."""
    if conv.stop_token_ids:
        stop_token_ids_index = [i for i, id in enumerate(output_ids) if id in conv.stop_token_ids]
        if len(stop_token_ids_index) > 0:
            output_ids = output_ids[: stop_token_ids_index[0]]
    output = tokenizer.decode(output_ids, spaces_between_special_tokens=False)
    if conv.stop_str and isinstance(conv.stop_str, list):
        stop_str_indices = sorted([output.find(stop_str) for stop_str in conv.stop_str if output.find(stop_str) > 0])
        if len(stop_str_indices) > 0:
            output = output[: stop_str_indices[0]]
    elif conv.stop_str and output.find(conv.stop_str) > 0:
        output = output[: output.find(conv.stop_str)]
    for special_token in tokenizer.special_tokens_map.values():
        if isinstance(special_token, list):
            for special_tok in special_token:
                output = output.replace(special_tok, "")
        else:
            output = output.replace(special_token, "")
    return output.strip()


def fastchat_answers(model, tokenizer, template: str, max_new_tokens: int) -> list[str]:
    """gen_model_answer.py's loop for one greedy question (model.generate on the whole prompt, then the cleaning)."""
    conv, turns = conversation.get_conv_template(template), []
    for question in QUESTION["turns"]:
        conv.append_message(conv.roles[0], question)
        conv.append_message(conv.roles[1], None)
        input_ids = tokenizer([conv.get_prompt()]).input_ids
        output_ids = model.generate(torch.as_tensor(input_ids), do_sample=False, max_new_tokens=max_new_tokens,
                                    pad_token_id=tokenizer.pad_token_id)[0][len(input_ids[0]):]
        output = fastchat_clean(tokenizer, conv, output_ids.tolist())
        conv.update_last_message(output)
        turns.append(output)
    return turns


@pytest.fixture
def stop_template():
    """A FastChat template (registered for the test) whose stop string is text tiny-llama greedily writes early,
    and whose stop token ids include one it may write: both of FastChat's cuts get exercised."""
    model, tokenizer = tiny_llama()
    conv = conversation.get_conv_template("zero_shot")
    prompt = tokenizer([fastchat_prompt_of(conv)]).input_ids
    with torch.no_grad():
        ids = model.generate(torch.as_tensor(prompt), do_sample=False, max_new_tokens=12,
                             pad_token_id=tokenizer.pad_token_id)[0][len(prompt[0]):].tolist()
    text = tokenizer.decode(ids)
    stop = text[3:5]
    assert len(stop) == 2 and text.find(stop) > 0  # the model writes it: the cut is exercised
    conversation.register_conv_template(conversation.Conversation(
        name="owlore-test-stops", system_message=conv.system_message, roles=conv.roles, sep_style=conv.sep_style,
        sep=conv.sep, stop_str=stop, stop_token_ids=[ids[-1]]), override=True)
    yield model, tokenizer
    conversation.conv_templates.pop("owlore-test-stops")


def fastchat_prompt_of(conv) -> str:
    conv.append_message(conv.roles[0], QUESTION["turns"][0])
    conv.append_message(conv.roles[1], None)
    return conv.get_prompt()


def test_greedy_answers_equal_fastchats_loop_and_stop_early(tmp_path, stop_template):
    model, tokenizer = stop_template
    out = generate.generate_answers(model, tokenizer, [QUESTION], tmp_path / "answers.jsonl", model_id="tiny",
                                    prompt_format="fastchat:owlore-test-stops", max_new_tokens=24)
    ours = json.loads(out.read_text())["choices"][0]["turns"]
    assert ours == fastchat_answers(model, tokenizer, "owlore-test-stops", max_new_tokens=24)
    meta = json.loads(generate.meta_path(out).read_text())
    assert meta["prompt_format"] == "fastchat:owlore-test-stops"
    assert meta["new_tokens"] < 2 * 24  # the stop string ended decoding early; FastChat decodes on and cuts


@pytest.mark.parametrize("text", ["abc### Human: more", "### Human: starts with it", "plain", "a</s>b###c"])
def test_stop_string_and_special_token_cleaning_equal_fastchats(text):
    tokenizer = byte_tokenizer()
    conv = conversation.get_conv_template("one_shot")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert FastChatStops("one_shot", tokenizer).text(ids) == fastchat_clean(tokenizer, conv, ids)


def test_finished_only_once_no_later_token_can_change_the_answer():
    tokenizer = byte_tokenizer()
    stops = FastChatStops("one_shot", tokenizer)  # stop string '###'
    ids = tokenizer("ab###", add_special_tokens=False)["input_ids"]
    assert stops.finished(ids)
    assert not stops.finished(ids[:-1])  # 'ab##': not yet a stop string
    assert not stops.finished(tokenizer("###ab###", add_special_tokens=False)["input_ids"])  # FastChat: find() == 0


def test_an_unknown_template_lists_fastchats_names():
    with pytest.raises(UserError, match="FastChat has no template 'vicuna'; its templates: .*one_shot") as error:
        resolve_answer_template("fastchat:vicuna", byte_tokenizer(), model_id="x")
    assert "\n" not in str(error.value) and "vicuna_v1.1" in str(error.value)


def test_without_fschat_one_line_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastchat", None)  # import fastchat → ImportError
    with pytest.raises(UserError, match=r"pip install 'owlore-bench\[fastchat\]'"):
        resolve_answer_template("fastchat", byte_tokenizer(), model_id="x")
    assert resolve_answer_template("train", byte_tokenizer(), model_id="x") == "alpaca"  # others need no fschat


def test_answer_template_in_an_experiment_is_checked():
    from owlore_bench.config import parse
    from owlore_bench.mtbench.pipeline import MTBenchConfig

    assert parse(MTBenchConfig, {"answer_template": "fastchat:llama-2"}, "mt_bench").answer_template == \
        "fastchat:llama-2"
    with pytest.raises(UserError, match="answer_template.*unknown answer_template 'chat:x'") as error:
        parse(MTBenchConfig, {"answer_template": "chat:x"}, "mt_bench")
    assert "\n" not in str(error.value)


def test_answer_cli_takes_a_fastchat_template_and_fastchats_question_slice(tmp_path, shared_data, monkeypatch):
    from owlore_bench.cli import main
    from owlore_bench.paths import DATA_ENV

    monkeypatch.setenv(DATA_ENV, str(shared_data))
    out = tmp_path / "fc"
    assert main(["mtbench", "answer", "--model", "tiny-llama", "--out", str(out), "--answer-template",
                 "fastchat:zero_shot", "--question-begin", "40", "--question-end", "42", "--max-new-tokens", "2"]) == 0
    rows = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert [row["question_id"] for row in rows] == [121, 122]  # question.jsonl lines 40 and 41
    assert json.loads((out / "answers.meta.json").read_text())["prompt_format"] == "fastchat:zero_shot"
