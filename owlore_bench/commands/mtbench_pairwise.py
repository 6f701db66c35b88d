"""`owlore-bench mtbench judge --mode pairwise-baseline|pairwise-all`: the answers of several models played
against each other (mtbench/pairwise.py), then their win / tie / loss table printed; with --dry-run the requests
and their cost instead. Kept apart from commands/mtbench.py, which parses the arguments and hands them here.
"""

from __future__ import annotations

from pathlib import Path

from owlore_bench.commands import output_folder
from owlore_bench.errors import UserError


def run_judge_pairwise(args) -> int:
    """The pairwise modes of `mtbench judge` (args as commands/mtbench.py parses them); returns the exit code."""
    from owlore_bench.mtbench.cost import describe_plan, dry_run_judge, token_counter
    from owlore_bench.mtbench.export import answer_files
    from owlore_bench.mtbench.judges import describe, make_judge
    from owlore_bench.mtbench.pairwise import judge_pairs, prepare_pairs
    from owlore_bench.mtbench.questions import load_reference
    from owlore_bench.reporting.mt_bench_pairwise import judge_title, pairwise_table, render_pairwise

    if args.judge_repeats != 1:
        raise UserError(f"--judge-repeats {args.judge_repeats}: applies to --mode single; {args.mode} plays each game "
                        f"once in each answer order, as FastChat (drop --judge-repeats)")
    output_folder(args.out)
    files = [path for given in map(Path, args.answers) for path in (answer_files(given) if given.is_dir() else [given])]
    options = {"mode": args.mode, "baseline": args.baseline, "reference": load_reference(args.reference)}
    judge = (dry_run_judge if args.dry_run else make_judge)(args.judge, args.judge_max_tokens)  # hf: no weights yet
    if args.dry_run:
        job = prepare_pairs(files, judge, args.out, **options)
        count, how = token_counter(judge)
        prompts = [prompt for _, *pair in job["games"] for prompt in pair]
        plan = {"requests": len(prompts), "prompt_tokens": sum(count(p.system, p.user) for p in prompts),
                "max_reply_tokens": len(prompts) * judge.max_tokens, "counted_with": how}
        print(f"dry run, judge {describe(judge.identity)}, {args.mode}: {len(job['matches'])} match(es) x "
              f"{len(job['questions'])} question(s), every turn in both answer orders; nothing sent")
        print(describe_plan(plan, args.price_in, args.price_out))
        return 0
    result = judge_pairs(files, judge, args.out, **options)  # every check before the first request
    print(render_pairwise(pairwise_table(result["rows"]), judge_title(result["rows"], result["path"])))
    print(f"references {options['reference'].name}: {result['judged']} game(s) judged now, {len(result['rows'])} in "
          f"all\npair judgments -> {result['path']}")
    return 0
