"""Answer generation on tiny-llama: FastChat's temperatures, turn 2 in context, batching, EOS, resume, file shape."""

from __future__ import annotations

import json

import pytest
import torch

from owlore_bench.errors import UserError
from owlore_bench.models import tiny_llama
from owlore_bench.mtbench import generate
from owlore_bench.mtbench.generate import _pick_tokens, decode_batch, generate_answers, resolve_prompt_format

QUESTIONS = [{"question_id": 81, "category": "writing", "turns": ["Write a poem.", "Shorter."]},
             {"question_id": 101, "category": "reasoning", "turns": ["Who is second?", "And now?"]},
             {"question_id": 111, "category": "math", "turns": ["What is 3 + 4?", "Double it."]},
             {"question_id": 121, "category": "coding", "turns": ["Sort a list in Python, please.", "In C."]},
             {"question_id": 131, "category": "extraction", "turns": ["Extract the names: Ann, Bob.", "Count them."]},
             {"question_id": 141, "category": "stem", "turns": ["What is an atom?", "And a molecule?"]},
             {"question_id": 151, "category": "humanities", "turns": ["Explain inflation.", "Simpler."]},
             {"question_id": 900, "category": "misc", "turns": ["Say something.", "More."]}]
# fastchat/llm_judge/common.py temperature_config, written out; a category it does not list gets 0.7.
FASTCHAT_TEMPERATURES = {81: 0.7, 101: 0.0, 111: 0.0, 121: 0.0, 131: 0.0, 141: 0.1, 151: 0.1, 900: 0.7}
GREEDY = [q for q in QUESTIONS if FASTCHAT_TEMPERATURES[q["question_id"]] == 0.0]


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_llama(seed=5)
    return model.eval(), tokenizer


@pytest.fixture
def spy(monkeypatch):
    """Records every decode_batch call (prompts decoded to text, temperatures) and still runs it."""
    calls = []
    real = generate.decode_batch

    def recording(model, prompts, **kwargs):
        calls.append({"prompts": prompts, "temperatures": kwargs["temperatures"]})
        return real(model, prompts, **kwargs)

    monkeypatch.setattr(generate, "decode_batch", recording)
    return calls


def _answers(path):
    return {row["question_id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_category_temperatures_are_fastchats(tiny, tmp_path, spy):
    model, tokenizer = tiny
    generate_answers(model, tokenizer, QUESTIONS, tmp_path / "a.jsonl", model_id="t", prompt_format="plain",
                     max_new_tokens=2, batch_size=8)
    assert len(spy) == 2  # one batch: turn 1, then turn 2
    for call in spy:
        texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in call["prompts"]]
        by_question = {q["question_id"]: t for q in QUESTIONS for text, t in zip(texts, call["temperatures"])
                       if text.startswith(q["turns"][0])}
        assert by_question == FASTCHAT_TEMPERATURES


def test_below_1e_4_decoding_is_greedy_above_it_samples_from_the_rows_generator(tiny):
    model, _ = tiny
    logits = torch.tensor([[0.0, 1.0, 0.5, 0.9]] * 2)
    sequences = [torch.tensor([1, 2])] * 2

    def pick(temperatures, generators):
        processors = [generate.generation_processors(model, temp, 4, 2) for temp in temperatures]
        return _pick_tokens(logits, sequences, temperatures, generators, processors)

    # a None generator would fail if it were sampled from: 5e-5 must be greedy
    assert pick([5e-5, 0.0], [None, None]).tolist() == [1, 1]

    def draw(seed):
        return pick([0.0, 5.0], [None, torch.Generator().manual_seed(seed)])[1].item()

    draws, again = [draw(seed) for seed in range(40)], [draw(seed) for seed in range(40)]
    assert draws == again and len(set(draws)) > 1  # seeded, and really sampled at temperature 5


def _what_generate_builds(model, **generate_kwargs):
    """The LogitsProcessorList model.generate builds for these arguments (captured from inside generate)."""
    built = []
    real = model._get_logits_processor

    def capture(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    model._get_logits_processor = capture
    try:
        model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=2, pad_token_id=0, **generate_kwargs)
    finally:
        del model._get_logits_processor
    return built[0]


def _describe(processors):
    return [(type(p).__name__, {k: v for k, v in vars(p).items() if isinstance(v, (int, float, bool))})
            for p in processors]


@pytest.mark.parametrize("settings", [{}, {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "top_p": 0.9}],
                         ids=["defaults", "model-config"])
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_the_processors_are_the_ones_generate_builds(temperature, settings):
    model, _ = tiny_llama(seed=5)
    for key, value in settings.items():
        setattr(model.generation_config, key, value)
    ours = generate.generation_processors(model, temperature, max_new_tokens=2, prompt_length=3)
    theirs = _what_generate_builds(model, do_sample=temperature >= 1e-4, temperature=temperature)
    assert _describe(ours) == _describe(theirs)
    if temperature:  # FastChat's sampled categories keep 50 logits (transformers' default top_k)
        assert ("TopKLogitsWarper", {"top_k": 50, "filter_value": float("-inf"), "min_tokens_to_keep": 1}) in \
            _describe(ours)


def test_greedy_equals_generate_token_for_token_with_the_models_own_processors(tmp_path):
    model, tokenizer = tiny_llama(seed=5)
    model.eval()
    model.generation_config.repetition_penalty = 1.5  # visible in a greedy decode: generate applies it
    model.generation_config.no_repeat_ngram_size = 2
    prompts = [tokenizer(text)["input_ids"] for text in ("Hello there", "A much longer prompt than the first")]
    options = dict(temperatures=[0.0, 0.0], generators=[None, None], max_new_tokens=16, stop_ids=set(),
                   pad_id=tokenizer.pad_token_id)
    batched = decode_batch(model, prompts, **options)
    for row, prompt in enumerate(prompts):
        reference = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=16, eos_token_id=None,
                                   pad_token_id=tokenizer.pad_token_id)[0, len(prompt):].tolist()
        alone = decode_batch(model, [prompt], **{**options, "temperatures": [0.0], "generators": [None]})[0]
        assert batched[row] == alone == reference


def test_sampled_tokens_always_fall_in_the_top_k(tiny):
    model, tokenizer = tiny
    prompt = tokenizer("Once upon a time")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt])).logits[0, -1]
    allowed = set(logits.topk(50).indices.tolist())
    draws = {decode_batch(model, [prompt], temperatures=[5.0], generators=[torch.Generator().manual_seed(seed)],
                          max_new_tokens=1, stop_ids=set(), pad_id=tokenizer.pad_token_id)[0][0]
             for seed in range(300)}
    assert draws <= allowed and len(draws) > 20  # at temperature 5 the whole vocabulary (259) would show up


def test_turn_two_sees_turn_one(tiny, tmp_path, spy):
    model, tokenizer = tiny
    out = generate_answers(model, tokenizer, QUESTIONS[2:3], tmp_path / "a.jsonl", model_id="t",
                           prompt_format="alpaca", max_new_tokens=6)
    first_answer = _answers(out)[111]["choices"][0]["turns"][0]
    turn_two = tokenizer.decode(spy[1]["prompts"][0], skip_special_tokens=True)
    assert turn_two == ("Below is an instruction that describes a task. Write a response that appropriately "
                        "completes the request.\n\n### Instruction:\nWhat is 3 + 4?\n\n### Response:\n"
                        + first_answer + "\n\n### Instruction:\nDouble it.\n\n### Response:\n")


def test_chat_format_puts_turn_one_in_the_messages(tiny, tmp_path, spy):
    model, tokenizer = tiny
    tokenizer = type(tokenizer)(tokenizer_object=tokenizer._tokenizer, bos_token="<s>", eos_token="</s>",
                                pad_token="<pad>")
    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}<assistant>{% endif %}")
    assert resolve_prompt_format(tokenizer) == "chat"
    out = generate_answers(model, tokenizer, QUESTIONS[2:3], tmp_path / "a.jsonl", model_id="t",
                           prompt_format="chat", max_new_tokens=4)
    first_answer = _answers(out)[111]["choices"][0]["turns"][0]
    assert tokenizer.decode(spy[1]["prompts"][0]) == (f"<user>What is 3 + 4?\n<assistant>{first_answer}\n"
                                                      f"<user>Double it.\n<assistant>")


def test_batched_equals_unbatched(tiny, tmp_path):
    model, tokenizer = tiny  # fp32; left padding with position ids counted over real tokens only
    batched = generate_answers(model, tokenizer, QUESTIONS, tmp_path / "b.jsonl", model_id="t",
                               prompt_format="alpaca", max_new_tokens=12, batch_size=8)
    alone = generate_answers(model, tokenizer, QUESTIONS, tmp_path / "u.jsonl", model_id="t",
                             prompt_format="alpaca", max_new_tokens=12, batch_size=1)
    turns = {qid: row["choices"][0]["turns"] for qid, row in _answers(batched).items()}
    assert turns == {qid: row["choices"][0]["turns"] for qid, row in _answers(alone).items()}
    # the greedy rows also equal transformers' own generate on the unpadded prompt
    question = GREEDY[0]
    ids = generate.encode_prompt(tokenizer, "alpaca", generate.conversation_prompt(tokenizer, "alpaca",
                                                                                   question["turns"], []))
    reference = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=12, eos_token_id=None,
                               pad_token_id=tokenizer.pad_token_id)[0, len(ids):]
    assert turns[question["question_id"]][0] == tokenizer.decode(reference, skip_special_tokens=True).strip()


def test_generation_stops_at_eos(tiny):
    model, tokenizer = tiny
    prompt = tokenizer("Hello there")["input_ids"]
    options = dict(temperatures=[0.0], generators=[None], max_new_tokens=10, pad_id=tokenizer.pad_token_id)
    free = decode_batch(model, [prompt], stop_ids=set(), **options)[0]
    stop = free[4]
    cut = decode_batch(model, [prompt], stop_ids={stop}, **options)[0]
    assert cut == free[: free.index(stop)]


def test_resume_generates_only_what_is_missing(tiny, tmp_path, spy):
    model, tokenizer = tiny
    out = tmp_path / "a.jsonl"
    options = dict(model_id="t", prompt_format="plain", max_new_tokens=3, batch_size=2)
    generate_answers(model, tokenizer, GREEDY, out, limit=2, **options)
    first = _answers(out)
    assert len(first) == 2
    spy.clear()
    generate_answers(model, tokenizer, GREEDY, out, **options)
    assert sum(len(call["prompts"]) for call in spy) == 2 * (len(GREEDY) - 2)  # two turns of each new question
    complete = _answers(out)
    assert set(complete) == {q["question_id"] for q in GREEDY}
    assert all(complete[qid] == row for qid, row in first.items())  # earlier lines untouched
    spy.clear()
    generate_answers(model, tokenizer, GREEDY, out, **options)
    assert spy == []


def test_a_torn_last_line_is_regenerated(tiny, tmp_path):
    model, tokenizer = tiny
    out = tmp_path / "a.jsonl"
    options = dict(model_id="t", prompt_format="plain", max_new_tokens=3)
    generate_answers(model, tokenizer, GREEDY[:1], out, **options)
    whole = out.read_text()
    out.write_text(whole + '{"question_id": 111, "answer_id": "x", "mod')  # killed mid-write
    generate_answers(model, tokenizer, GREEDY[:2], out, **options)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["question_id"] for row in lines] == sorted(q["question_id"] for q in GREEDY[:2])


def test_resume_with_other_settings_is_refused(tiny, tmp_path):
    model, tokenizer = tiny
    out = tmp_path / "a.jsonl"
    generate_answers(model, tokenizer, GREEDY[:1], out, model_id="t", prompt_format="plain", max_new_tokens=3)
    with pytest.raises(UserError, match="generated with max_new_tokens=3, this run asks for max_new_tokens=5"):
        generate_answers(model, tokenizer, GREEDY, out, model_id="t", prompt_format="plain", max_new_tokens=5)


def test_the_answer_file_has_fastchats_shape(tiny, tmp_path):
    model, tokenizer = tiny
    out = generate_answers(model, tokenizer, QUESTIONS[:3], tmp_path / "a.jsonl", model_id="tiny", max_new_tokens=3,
                           prompt_format="alpaca")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["question_id"] for row in rows] == [81, 101, 111]  # sorted, as FastChat's reorg_answer_file
    for row in rows:
        # exactly the keys fastchat/llm_judge/gen_model_answer.py writes, with its types
        assert list(row) == ["question_id", "answer_id", "model_id", "choices", "tstamp"]
        assert isinstance(row["answer_id"], str) and row["model_id"] == "tiny" and isinstance(row["tstamp"], float)
        assert len(row["choices"]) == 1 and list(row["choices"][0]) == ["index", "turns"]
        assert row["choices"][0]["index"] == 0 and len(row["choices"][0]["turns"]) == 2
        assert all(isinstance(turn, str) for turn in row["choices"][0]["turns"])
    meta = json.loads((tmp_path / "a.meta.json").read_text())  # the format used is recorded beside the answers
    assert meta["prompt_format"] == "alpaca" and meta["new_tokens"] > 0


def test_prompt_format_of_a_run_is_its_training_template(tiny, tmp_path):
    _, tokenizer = tiny
    (tmp_path / "config.json").write_text(json.dumps({"data": {"path": "x.json", "template": "plain"}}))
    assert resolve_prompt_format(tokenizer, tmp_path) == "plain"
    assert resolve_prompt_format(tokenizer) == "alpaca"  # the byte tokenizer has no chat template


def test_fp16_answers_equal_generate_in_fp16(tmp_path):
    """`mtbench answer --dtype fp16` (FastChat's dtype on CUDA), checked on CPU: the model loads in fp16 and our
    batched greedy decoding equals transformers' generate on the same fp16 model, token for token."""
    from owlore_bench.models import load_model

    model, tokenizer = load_model("tiny-llama", dtype="fp16", device="cpu")
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float16}
    model.eval()
    prompts = [tokenizer(text)["input_ids"] for text in ("Hello there", "A much longer prompt than the first")]
    batched = decode_batch(model, prompts, temperatures=[0.0, 0.0], generators=[None, None], max_new_tokens=12,
                           stop_ids=set(), pad_id=tokenizer.pad_token_id)
    for row, prompt in enumerate(prompts):
        reference = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=12, eos_token_id=None,
                                   pad_token_id=tokenizer.pad_token_id)[0, len(prompt):].tolist()
        assert batched[row] == reference
