"""MT-Bench answer prompts: which template (`answer_template`) and the prompt text of each turn.

`answer_template` (the config field and `mtbench answer --answer-template`) resolves to a prompt format, which is
recorded in answers.meta.json beside the answers:
- "train" (default): a trained run's data.template ('alpaca' or 'plain'); a base model's chat template ('chat'),
  or 'alpaca' when its tokenizer has none;
- "chat": the tokenizer's chat template (user/assistant messages, generation prompt appended);
- "fastchat": FastChat's own conversation template, picked as fastchat/llm_judge/gen_model_answer.py picks it:
  `get_conversation_template(model_id)` (the adapter matching the model id; `one_shot` for most ids, `alpaca`,
  `llama-2`, ...), except that a run trained with the Alpaca template gets FastChat's `alpaca` (what FastChat's
  AlpacaAdapter gives an alpaca model); "fastchat:NAME" names the template (fastchat.conversation.conv_templates).
  Recorded as 'fastchat:<name>'. Only these prompts reproduce how published MT-Bench answers were generated.
Prompt texts of the formats:
- "alpaca": datasets.templates.render_prompt's Alpaca prompt for turn 1; turn 2 appends the answer, then
  "\\n\\n### Instruction:\\n{q2}\\n\\n### Response:\\n";
- "plain": the instruction alone (as `data.template: plain` trains); turn 2 appends the answer, "\\n\\n" and q2;
- "fastchat:NAME": conv.append_message per turn (the earlier answer via update_last_message), conv.get_prompt().
The fschat package (`pip install 'owlore-bench[fastchat]'`) is imported only for the fastchat templates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owlore_bench.datasets.templates import render_prompt
from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.results import read_json

PROMPT_FORMATS = ("chat", "alpaca", "plain", "fastchat:NAME")
ANSWER_TEMPLATES = ("train", "chat", "fastchat", "fastchat:NAME")
FASTCHAT = "fastchat"
FASTCHAT_INSTALL = "pip install 'owlore-bench[fastchat]'"


def fastchat_conversation():
    """fastchat.conversation (the fschat package), or one line naming the extra that installs it."""
    try:
        from fastchat import conversation
    except ImportError:
        raise UserError(f"answer_template fastchat needs FastChat's templates (the fschat package): "
                        f"{FASTCHAT_INSTALL}") from None
    return conversation


def fastchat_template(name: str) -> Any:
    """A fresh FastChat Conversation of template `name`, or one line listing FastChat's template names."""
    conversation = fastchat_conversation()
    if name not in conversation.conv_templates:
        names = sorted(conversation.conv_templates)
        raise UserError(f"answer_template fastchat:{name}: FastChat has no template {name!r}; its templates: "
                        f"{', '.join(names)}.{did_you_mean(name, names)}")
    return conversation.get_conv_template(name)


def fastchat_template_for(model_id: str) -> str:
    """The template FastChat's gen_model_answer.py would use for `--model-id model_id` (its adapter's pick)."""
    fastchat_conversation()  # one line if fschat is missing, before its model_adapter imports anything else
    from fastchat.model.model_adapter import get_conversation_template

    return get_conversation_template(model_id).name


def train_format(tokenizer: Any, run_dir: str | Path | None = None) -> str:
    """A trained run: its config.json's data.template. A base model: 'chat' if its tokenizer has a chat
    template, else 'alpaca'."""
    if run_dir is not None:
        if not (Path(run_dir) / "config.json").is_file():
            raise UserError(f"--run {run_dir}: no config.json, so its training template is unknown")
        return read_json(Path(run_dir) / "config.json").get("data", {}).get("template", "alpaca")
    return "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"


def resolve_answer_template(answer_template: str, tokenizer: Any, *, model_id: str,
                            run_dir: str | Path | None = None) -> str:
    """The prompt format an answer_template means for this model (see the module docstring)."""
    kind, _, name = answer_template.partition(":")
    if kind == "train" and not name:
        return train_format(tokenizer, run_dir)
    if kind == "chat" and not name:
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("answer_template chat: this tokenizer has no chat template; use answer_template train "
                            "(alpaca) or fastchat")
        return "chat"
    if kind == FASTCHAT:
        if not name and run_dir is not None and train_format(tokenizer, run_dir) == "alpaca":
            name = "alpaca"
        name = name or fastchat_template_for(model_id)
        fastchat_template(name)
        return f"{FASTCHAT}:{name}"
    raise UserError(f"answer_template {answer_template!r} is unknown; use one of {', '.join(ANSWER_TEMPLATES)}")


def check_prompt_format(prompt_format: str) -> None:
    """One line unless prompt_format is chat, alpaca, plain or fastchat:<a FastChat template>."""
    if prompt_format.startswith(FASTCHAT + ":"):
        fastchat_template(prompt_format.partition(":")[2])
    elif prompt_format not in ("chat", "alpaca", "plain"):
        raise UserError(f"prompt format '{prompt_format}' is unknown; use one of {', '.join(PROMPT_FORMATS)}")


def fastchat_prompt(name: str, questions: list[str], answers: list[str]) -> str:
    """FastChat's prompt for turn len(answers)+1, built as gen_model_answer.py builds it."""
    conv = fastchat_template(name)
    for index, question in enumerate(questions[: len(answers) + 1]):
        conv.append_message(conv.roles[0], question)
        conv.append_message(conv.roles[1], None)
        if index < len(answers):
            conv.update_last_message(answers[index])
    return conv.get_prompt()


def conversation_prompt(tokenizer: Any, prompt_format: str, questions: list[str], answers: list[str]) -> str:
    """The prompt text for turn len(answers)+1: questions[0..k] with the k earlier answers in between."""
    if prompt_format.startswith(FASTCHAT + ":"):
        return fastchat_prompt(prompt_format.partition(":")[2], questions, answers)
    if prompt_format == "chat":
        messages = []
        for index, question in enumerate(questions[: len(answers) + 1]):
            messages.append({"role": "user", "content": question})
            if index < len(answers):
                messages.append({"role": "assistant", "content": answers[index]})
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    check_prompt_format(prompt_format)
    text = render_prompt({"instruction": questions[0], "input": ""}, prompt_format)
    for answer, question in zip(answers, questions[1:]):
        follow_up = f"\n\n### Instruction:\n{question}\n\n### Response:\n" if prompt_format == "alpaca" else \
            f"\n\n{question}"
        text += answer + follow_up
    return text


def encode_prompt(tokenizer: Any, prompt_format: str, text: str) -> list[int]:
    """Token ids of a prompt: a chat template already holds its special tokens; alpaca/plain get the tokenizer's
    own (BOS), as in training (data.tokenize_record); FastChat's prompts too, as `tokenizer([prompt])` does."""
    return tokenizer(text, add_special_tokens=prompt_format != "chat")["input_ids"]


class FastChatStops:
    """How gen_model_answer.py ends and cleans one answer under FastChat template `name`: the output is cut
    before the first of the template's stop_token_ids (and the model's EOS, where generate stops), decoded with
    spaces_between_special_tokens=False, cut at the first stop string found past position 0 (`find(...) > 0`:
    an answer that begins with the stop string keeps all of it, as FastChat's does), stripped of the tokenizer's
    special-token strings, then of whitespace (and of xgen's leading 'Assistant:')."""

    def __init__(self, name: str, tokenizer: Any):
        conv = fastchat_template(name)
        self.name, self.tokenizer = conv.name, tokenizer
        self.stop_token_ids = set(conv.stop_token_ids or ())
        stop = conv.stop_str
        self.stop_strings = [text for text in (stop if isinstance(stop, list) else [stop]) if text]
        self.longest = max(map(len, self.stop_strings), default=0)

    def _cut_index(self, text: str) -> int | None:
        found = sorted(index for index in (text.find(stop) for stop in self.stop_strings) if index > 0)
        return found[0] if found else None

    def finished(self, ids: list[int]) -> bool:
        """True once more tokens cannot change the answer: a stop string sits past position 0 and the text
        after it is at least as long as the longest stop string (so no stop string can still end before it).
        Generating on (as FastChat does, to max_new_tokens) would only produce text that is cut away."""
        if not self.stop_strings:
            return False
        text = self.tokenizer.decode(ids, spaces_between_special_tokens=False)
        cut = self._cut_index(text)
        return cut is not None and len(text) >= cut + self.longest

    def text(self, ids: list[int]) -> str:
        """The answer text of new token ids (already cut before the first stop token id)."""
        output = self.tokenizer.decode(ids, spaces_between_special_tokens=False)
        cut = self._cut_index(output)
        if cut is not None:
            output = output[:cut]
        for special in self.tokenizer.special_tokens_map.values():
            for token in special if isinstance(special, list) else [special]:
                output = output.replace(token, "")
        output = output.strip()
        if self.name == "xgen" and output.startswith("Assistant:"):
            output = output.replace("Assistant:", "", 1).strip()
        return output
