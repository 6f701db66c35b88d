"""`owlore-bench mtbench answer | judge | show | export`: MT-Bench answers, judgments, score tables and FastChat's
data tree, FastChat-compatible."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from owlore_bench.commands import output_folder, positive_int
from owlore_bench.commands.mtbench_show import run_show
from owlore_bench.errors import UserError
from owlore_bench.mtbench.modes import MODES as JUDGE_MODES

EXAMPLES = """examples:
  owlore-bench mtbench answer --model smollm2-135m --out runs/mtbench/base --limit 16 --max-new-tokens 256
  owlore-bench mtbench judge --answers runs/mtbench/base/answers.jsonl --judge hf:smollm2-135m --out runs/mtbench/base
  owlore-bench mtbench show runs/mtbench/base
  owlore-bench mtbench export runs/quickstart --fastchat FastChat/fastchat/llm_judge
"""
ANSWER_EXAMPLES = """examples:
  owlore-bench mtbench answer --model smollm2-135m --out runs/mtbench/base            # all 80 questions
  owlore-bench mtbench answer --run runs/quickstart/lora/seed-0 --out runs/mtbench/lora --limit 16 \\
      --max-new-tokens 256 --batch-size 8      # a trained run: prompted in the template it was trained with
  owlore-bench mtbench answer --model smollm2-135m --out runs/mtbench/fc --answer-template fastchat \\
      --question-begin 0 --question-end 10     # FastChat's one_shot prompt and stops, questions[0:10]

Writes <out>/answers.jsonl (FastChat's model-answer format; FastChat reads it as model_answer/<model-id>.jsonl)
and <out>/answers.meta.json. A rerun skips the questions already answered.
"""
JUDGE_EXAMPLES = """examples:
  owlore-bench mtbench judge --answers runs/mtbench/base/answers.jsonl --judge hf:smollm2-135m --out runs/mtbench/base
  OPENAI_API_KEY=... owlore-bench mtbench judge --answers answers.jsonl --judge openai:gpt-4 --out runs/mtbench/base
  owlore-bench mtbench judge --answers answers.jsonl --judge openai:gpt-4o --out runs/mtbench/base --dry-run \\
      --price-in 2.5 --price-out 10            # requests, prompt tokens and cost, nothing sent
  owlore-bench mtbench judge --answers answers.jsonl --judge openai:gpt-4o --out runs/mtbench/base \\
      --judge-repeats 5 --reference my_refs.jsonl   # median of 5 per turn, the judge's sd in the table
  owlore-bench mtbench judge --answers answers.jsonl --out runs/mtbench/base \\
      --judge 'openai:Qwen/Qwen2.5-7B-Instruct?base_url=http://127.0.0.1:8000/v1&api_key_env=none'   # vllm serve
  owlore-bench mtbench judge --mode pairwise-baseline --answers runs/mtbench_exp --baseline full_ft \\
      --judge openai:gpt-4 --out runs/mtbench_exp   # every unit's answers against full FT's, both answer orders
  owlore-bench mtbench judge --mode pairwise-all --answers a/answers.jsonl b/answers.jsonl c/answers.jsonl \\
      --judge openai:gpt-4 --out runs/pairs         # every two models

Judge specs: BACKEND:MODEL[?key=value&...]; openai: options base_url, api_key_env ('none' = no key),
concurrency, timeout (s), retries (the openai client's, with its own backoff), api_version + deployment (Azure
OpenAI); hf: options dtype, device, batch_size, prefill.
Writes <out>/judgments/<judge>.jsonl (FastChat's judgments format) and <out>/scores-<judge>.json; the pairwise
modes <out>/mt_bench_pairwise/<judge>_pair.jsonl (FastChat's model_judgment/<judge>_pair.jsonl rows) and print
win / tie / loss rates with 95 % bootstrap intervals over questions.
A rerun judges only what is missing; another judge writes its own files.
"""
EXPORT_EXAMPLES = """examples:
  owlore-bench mtbench export runs/quickstart --fastchat FastChat/fastchat/llm_judge     # every unit's answers
  owlore-bench mtbench export runs/mtbench/base --fastchat /tmp/fc && cd /tmp/fc && \\
      python -m fastchat.llm_judge.show_result --bench-name mt_bench --judge-model smollm2-135m

Writes OUT/data/mt_bench/model_answer/<id>.jsonl ('/' in ids → '-'), model_judgment/<judge>_single.jsonl,
model_judgment/<judge>_pair.jsonl (pair judgments), reference_answer/<judge>.jsonl, and question.jsonl /
OUT/data/judge_prompts.jsonl when absent.
"""
SHOW_EXAMPLES = """examples:
  owlore-bench mtbench show runs/mtbench/base                             # every judge in <dir>/judgments/
  owlore-bench mtbench show runs/mtbench_exp                              # + <dir>/mt_bench_pairwise/*_pair.jsonl
  owlore-bench mtbench show runs/mtbench/base/judgments/hf-smollm2-135m.jsonl
  owlore-bench mtbench show data/mt_bench/model_judgment/gpt-4_single.jsonl   # FastChat's own files too
"""


def add_parser(subparsers, help_text: str) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser("mtbench", help=help_text,
                                   description="MT-Bench as FastChat's llm_judge does it (single-answer grading), "
                                               "with any judge: an OpenAI-compatible endpoint or a local model.",
                                   epilog=EXAMPLES, formatter_class=raw)
    actions = parser.add_subparsers(dest="action", required=True, metavar="{answer,judge,show,export}")
    _add_answer(actions, raw)
    _add_judge(actions, raw)
    _add_show(actions, raw)
    export = actions.add_parser("export", help="write FastChat's data/mt_bench tree (model_answer/, model_judgment/)",
                                description="Export answers and judgments as FastChat's llm_judge data tree.",
                                epilog=EXPORT_EXAMPLES, formatter_class=raw)
    export.add_argument("source", metavar="RUN_OR_DIR", help="a run, an experiment or an `mtbench answer` folder")
    export.add_argument("--fastchat", required=True, metavar="OUT",
                        help="FastChat's llm_judge folder (or any): writes OUT/data/mt_bench/...")
    export.set_defaults(run=run_export)


def _add_answer(actions, raw) -> None:
    answer = actions.add_parser("answer", help="generate both turns of the questions for a model or a trained run",
                                description="Generate MT-Bench answers (FastChat's temperatures per category).",
                                epilog=ANSWER_EXAMPLES, formatter_class=raw)
    source = answer.add_mutually_exclusive_group()
    source.add_argument("--model", default="smollm2-135m", help="HF id or path, 'smollm2-135m' (default), 'tiny-llama'")
    source.add_argument("--run", dest="run_dir", help="a trained run folder (config.json + model/)")
    answer.add_argument("--out", required=True, help="output folder (answers.jsonl, answers.meta.json)")
    answer.add_argument("--model-id", "--model_id", dest="model_id", help="model_id in the answers (default: from "
                                                                          "--model / --run)")
    answer.add_argument("--answer-template", "--answer_template", dest="answer_template", default="train",
                        help="train (default: a run's training template; a model's chat template, else alpaca), "
                             "chat, fastchat (FastChat's template for the model id, as published scores), "
                             "fastchat:NAME")
    answer.add_argument("--prompt-format", "--prompt_format", dest="prompt_format", default="auto",
                        choices=["auto", "chat", "alpaca", "plain"],
                        help="force a format (auto, the default: what --answer-template says)")
    answer.add_argument("--limit", type=positive_int, help="answer N questions, round-robin over the categories")
    answer.add_argument("--question-begin", "--question_begin", dest="question_begin", type=int,
                        help="first question index (as FastChat's questions[begin:end])")
    answer.add_argument("--question-end", "--question_end", dest="question_end", type=int,
                        help="end question index, exclusive")
    answer.add_argument("--max-new-tokens", "--max_new_tokens", dest="max_new_tokens", type=positive_int, default=1024,
                        help="tokens per answer turn (default 1024, FastChat's)")
    answer.add_argument("--batch-size", "--batch_size", dest="batch_size", type=positive_int, default=8,
                        help="questions decoded together (default 8)")
    answer.add_argument("--seed", type=int, default=0, help="seeds sampled answers per question and turn (default 0)")
    answer.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], default="auto",
                        help="weights while answering: auto (default) = bf16 on CUDA, fp32 on CPU; fp16 is what "
                             "FastChat's gen_model_answer loads on CUDA, to reproduce published answers (on CPU "
                             "torch runs fp16 too, far slower than fp32)")
    answer.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto (default) = cuda when available, else cpu")
    answer.set_defaults(run=run_answer)


def _add_judge(actions, raw) -> None:
    judge = actions.add_parser("judge", help="grade answers with a judge (FastChat single grading or pairwise)",
                               description="Judge FastChat model-answer files; print and write the scores "
                                           "(single) or the win / tie / loss rates (pairwise).",
                               epilog=JUDGE_EXAMPLES, formatter_class=raw)
    judge.add_argument("--answers", required=True, nargs="+",
                       help="a FastChat model-answer JSONL (ours or FastChat's); pairwise modes: several, or folders "
                            "holding answers.jsonl files (an experiment, `mtbench answer --out` folders)")
    judge.add_argument("--mode", choices=JUDGE_MODES, default="single",
                       help="single (default: grade every turn 1-10), pairwise-baseline (every model against "
                            "--baseline), pairwise-all (every two models); FastChat's gen_judgment.py modes")
    judge.add_argument("--baseline", default="full_ft",
                       help="pairwise-baseline: the baseline's row label (an experiment's method label) or model id "
                            "(default full_ft)")
    judge.add_argument("--judge", required=True, help="judge spec, e.g. hf:smollm2-135m or openai:gpt-4")
    judge.add_argument("--out", required=True, help="output folder (judgments/, scores-<judge>.json)")
    judge.add_argument("--judge-max-tokens", "--judge_max_tokens", dest="judge_max_tokens", type=positive_int,
                       default=2048,
                       help="tokens per judge reply (default 2048, FastChat's)")
    judge.add_argument("--reference", default="gpt-4", help="reference answers: a FILE or a NAME in the data's "
                                                            "mt_bench/ (default gpt-4)")
    judge.add_argument("--judge-repeats", "--judge_repeats", dest="judge_repeats", type=positive_int, default=1,
                       help="single mode: judge each turn N times; median per turn, the judge's sd in the table "
                            "(default 1)")
    judge.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                       help="print requests, prompt tokens and cost; send nothing")
    judge.add_argument("--price-in", "--price_in", dest="price_in", type=float, help="price per 1M prompt tokens")
    judge.add_argument("--price-out", "--price_out", dest="price_out", type=float, help="price per 1M reply tokens")
    judge.set_defaults(run=run_judge)


def _add_show(actions, raw) -> None:
    show = actions.add_parser("show", help="print the score tables of judgments (FastChat's show_result)",
                              description="Print FastChat-style score tables, one per judge.",
                              epilog=SHOW_EXAMPLES, formatter_class=raw)
    show.add_argument("path", help="an output folder (its judgments/*.jsonl) or one judgments JSONL file")
    show.set_defaults(run=run_show)


def default_model_id(model: str, run_dir: str | None) -> str:
    """A run folder 'runs/x/lora/seed-0' → 'lora-seed-0'; a model 'org/name' → 'name'."""
    if run_dir:
        path = Path(run_dir).resolve()
        return f"{path.parent.name}-{path.name}" if path.name.startswith("seed-") else path.name
    return Path(model).name or model


def run_answer(args) -> int:
    from owlore_bench.models import load_model, resolve_device
    from owlore_bench.mtbench.generate import generate_answers, meta_path
    from owlore_bench.mtbench.pipeline import MTBenchConfig
    from owlore_bench.mtbench.questions import load_questions, select_questions
    from owlore_bench.mtbench.templates import resolve_answer_template
    from owlore_bench.results import read_json
    from owlore_bench.train.run import load_trained

    for name in ("question_begin", "question_end"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')}: must be >= 0 (got {getattr(args, name)})")
    try:
        MTBenchConfig(answer_template=args.answer_template)
    except ValueError:
        raise UserError(f"--answer-template {args.answer_template!r} is unknown; use train, chat, fastchat or "
                        f"fastchat:NAME") from None
    out = output_folder(args.out)
    if args.dtype == "fp16" and resolve_device(args.device).type == "cpu":
        print("mtbench answer: --dtype fp16 on CPU runs, but far slower than fp32 (torch has few fp16 CPU kernels); "
              "it is meant for CUDA, where FastChat answers in fp16", file=sys.stderr)
    questions = load_questions()  # before the model: a data problem costs seconds, not a model load
    select_questions(questions, args.limit, args.question_begin, args.question_end)
    if args.run_dir:
        model, tokenizer = load_trained(args.run_dir, dtype=args.dtype, device=args.device)
    else:
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    model_id = args.model_id or default_model_id(args.model, args.run_dir)
    prompt_format = (args.prompt_format if args.prompt_format != "auto" else
                     resolve_answer_template(args.answer_template, tokenizer, model_id=model_id, run_dir=args.run_dir))
    started = time.perf_counter()
    out_file = generate_answers(model, tokenizer, questions, out / "answers.jsonl", model_id=model_id,
                                prompt_format=prompt_format, max_new_tokens=args.max_new_tokens,
                                batch_size=args.batch_size, seed=args.seed, limit=args.limit,
                                question_begin=args.question_begin, question_end=args.question_end, progress=True)
    meta = read_json(meta_path(out_file))
    rate = meta["new_tokens"] / meta["wall_s"] if meta["wall_s"] else 0.0
    print(f"answers of {model_id} ({prompt_format} prompts) -> {out_file}; this call "
          f"{time.perf_counter() - started:.1f} s; all answers: {meta['new_tokens']} tokens in {meta['wall_s']:.1f} s "
          f"({rate:.1f} tokens/s)")
    return 0


def run_judge(args) -> int:
    from owlore_bench.mtbench.judges import describe, make_judge, parse_spec
    from owlore_bench.mtbench.pipeline import judge_answer_file, scores_path
    from owlore_bench.mtbench.questions import check_references, load_answers, load_questions, load_reference
    from owlore_bench.mtbench.scores import format_scores

    if args.mode != "single":
        from owlore_bench.commands.mtbench_pairwise import run_judge_pairwise

        return run_judge_pairwise(args)
    if len(args.answers) != 1:
        raise UserError(f"--answers: --mode single judges one model's file at a time (got {len(args.answers)}); "
                        f"compare models with --mode pairwise-baseline or pairwise-all")
    args.answers = args.answers[0]
    output_folder(args.out)
    parse_spec(args.judge)  # a bad spec, answers file or reference: one line before any model is loaded
    questions = load_questions()
    answers = load_answers(args.answers, questions)
    reference = load_reference(args.reference)
    answered = {answer["question_id"] for answer in answers}
    check_references(reference, [q for q in questions if q["question_id"] in answered])
    if args.dry_run:
        from owlore_bench.mtbench.cost import describe_plan, dry_run_judge, judging_plan

        judge = dry_run_judge(args.judge, args.judge_max_tokens)
        plan = judging_plan(answers, questions, judge, reference, args.out, args.judge_repeats)
        print(f"dry run, judge {describe(judge.identity)}; nothing sent")
        print(describe_plan(plan, args.price_in, args.price_out))
        return 0
    judge = make_judge(args.judge, args.judge_max_tokens)
    scores = judge_answer_file(args.answers, judge, args.out, reference=reference, repeats=args.judge_repeats)
    print(format_scores({scores["model_id"]: scores}, f"judge {describe(judge.identity)}, references {reference.name}"))
    print(f"\njudgments -> {scores['judgments_file']}\nscores -> {scores_path(args.out, judge, reference)}")
    return 0


def run_export(args) -> int:
    from owlore_bench.mtbench.export import export_fastchat

    written = export_fastchat(args.source, args.fastchat)
    print(f"FastChat tree -> {Path(args.fastchat) / 'data' / 'mt_bench'}: {len(written['models'])} model answer "
          f"file(s), {len(written['judgments'])} judgment file(s), {len(written['pair_judgments'])} pair judgment "
          f"file(s), {len(written['references'])} reference file(s)")
    print(f"e.g. cd {args.fastchat} && python -m fastchat.llm_judge.show_result --bench-name mt_bench "
          f"--input-file {Path(written['judgments'][0]).relative_to(args.fastchat) if written['judgments'] else '...'}")
    if written["pair_judgments"]:
        print(f"     python -m fastchat.llm_judge.show_result --mode pairwise-all --input-file "
              f"{Path(written['pair_judgments'][0]).relative_to(args.fastchat)}   (or --mode pairwise-baseline "
              f"--baseline-model NAME)")
    return 0
