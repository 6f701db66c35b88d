"""Mutation check: plant known bugs one at a time and confirm that the tests written against them fail.

Run from anywhere (it works in the repository root):

    .venv/bin/python scripts/mutation_check.py              # every mutation; takes a few minutes on CPU
    .venv/bin/python scripts/mutation_check.py --only NAME  # just one (repeat --only for several)
    .venv/bin/python scripts/mutation_check.py --list       # the names

Each mutation is (file, exact original snippet, mutated snippet, test node ids that must fail). For each one the
script backs the file up, replaces the snippet (refusing when it is not found exactly once: the source moved on
and the mutation must be updated), runs `python -m pytest -q -p no:cacheprovider -x <tests>`, and restores the
file in a `finally` block. The restore keeps edits someone else saved meanwhile: when the file is no longer what
the script wrote, only the mutated snippet is put back to the original.

First the listed tests run once on the unmutated source (a test that already fails proves nothing); then a
table: mutation, expected-to-fail tests, caught yes/no. A mutation counts as caught when pytest exits 1 (tests
failed). Exit status: 0 all caught, 1 some mutation survived, 2 the baseline run failed or a snippet was not found.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation(
        "outlier-mean-per-module", "owlore_bench/analysis/outliers.py",
        "    scores = torch.cat([(w.abs().float() * s.float().sqrt()[None, :]).flatten()\n"
        "                        for w, s in zip(weights, column_sq_means)])\n"
        "    return float(100.0 * (scores > threshold * scores.mean()).sum() / scores.numel())\n",
        "    per_module = [(w.abs().float() * s.float().sqrt()[None, :]).flatten()\n"
        "                  for w, s in zip(weights, column_sq_means)]\n"
        "    scores = torch.cat(per_module)\n"
        "    return float(100.0 * sum(int((m > threshold * m.mean()).sum()) for m in per_module) / scores.numel())\n",
        ("tests/test_outliers.py::test_the_mean_is_pooled_over_the_layer_not_taken_per_module",)),
    Mutation(
        "sampling-staying-layers-freed", "owlore_bench/train/sampling.py",
        "else set(old) - set(new)", "else set(old)",
        ("tests/test_layer_sampling.py::test_a_layer_that_stays_across_a_switch_keeps_its_gradient_and_adam_state",
         "tests/test_layer_sampling.py::test_lisa_training_every_layer_is_full_fine_tuning_bit_for_bit")),
    Mutation(
        "ledger-shared-storage-counted-twice", "owlore_bench/memory/ledger.py",
        "seen.setdefault(storage_key(tensor), tensor.untyped_storage().nbytes())",
        "seen[(storage_key(tensor), id(tensor))] = tensor.untyped_storage().nbytes()",
        ("tests/test_memory.py::test_two_parameters_cut_from_one_buffer_are_one_storage",)),
    Mutation(
        "ledger-activation-counted-per-save", "owlore_bench/memory/ledger.py",
        "self.saved.setdefault(key, tensor.untyped_storage().nbytes())",
        "self.saved[(key, len(self.saved))] = tensor.untyped_storage().nbytes()",
        ("tests/test_memory.py::test_an_activation_saved_twice_is_counted_once",)),
    Mutation(
        "read-jsonl-stops-at-blank-line", "owlore_bench/results.py",
        "        if not line.strip():\n            continue\n",
        "        if not line.strip():\n            break\n",
        ("tests/test_results_store.py::test_blank_lines_anywhere_are_skipped",)),
    Mutation(
        "galore-scale-ignored", "methods/galore.py",
        "update_proj_gap=c.update_proj_gap, scale=c.scale,", "update_proj_gap=c.update_proj_gap, scale=1.0,",
        ("tests/test_galore.py::test_one_step_on_one_matrix_is_the_hand_computed_projected_adam_update",)),
    Mutation(
        "heavy-tail-layer-alpha-max", "owlore_bench/analysis/heavy_tail.py",
        "float(np.nanmean(values))", "float(np.nanmax(values))",
        ("tests/test_heavy_tail.py::test_a_layer_alpha_is_the_mean_of_its_matrices_alphas",)),
    Mutation(
        "heavy-tail-pearson-not-spearman", "owlore_bench/analysis/heavy_tail.py",
        'result = spearmanr(np.asarray(outlier_ratios, dtype=float), np.asarray(alphas, dtype=float), '
        'nan_policy="omit")',
        'result = __import__("scipy.stats").stats.pearsonr(np.asarray(outlier_ratios, dtype=float), '
        'np.asarray(alphas, dtype=float))',
        ("tests/test_heavy_tail.py::test_spearman_of_a_monotone_non_linear_pair_is_one",)),
    Mutation(
        "plot-memory-in-gb-not-gib", "owlore_bench/reporting/plots.py",
        "heights = np.array([means[name][category] / GIB for name in names])",
        "heights = np.array([means[name][category] / 1e9 for name in names])",
        ("tests/test_report.py::test_memory_bars_are_the_per_category_means_and_stack_to_the_table_peak",)),
    Mutation(
        "plot-loss-min-not-mean", "owlore_bench/reporting/plots.py",
        'axes.plot(curves.index, curves["mean"],', 'axes.plot(curves.index, curves["min"],',
        ("tests/test_report.py::test_loss_plot_has_one_mean_curve_per_trained_method",)),
    Mutation(
        "plot-pareto-memory-in-gb", "owlore_bench/reporting/plots.py",
        'memory = usable[("peak_mem_bytes", "mean")] / GIB', 'memory = usable[("peak_mem_bytes", "mean")] / 1e9',
        ("tests/test_report.py::test_pareto_points_are_the_table_memory_and_avg",)),
    Mutation(
        "plot-outlier-bars-sorted", "owlore_bench/reporting/plots.py",
        "axes.bar(range(len(ratios)), ratios,", "axes.bar(range(len(ratios)), sorted(ratios),",
        ("tests/test_report.py::test_outlier_and_active_layer_plots_show_the_stored_numbers",)),
    Mutation(
        "registry-owlore-fullrank-missing", "methods/owlore.py",
        '@register_method("owlore_fullrank")\n', "# (mutation) owlore_fullrank is not registered\n",
        ("tests/test_registry.py::test_builtin_methods_are_exactly_the_methods_folder",)),
    Mutation(
        "update-in-backward-flag-ignored", "owlore_bench/train/loop.py",
        "if cfg.update_in_backward else None", "if False else None",
        ("tests/test_update_in_backward.py::test_train_cli_with_update_in_backward_lowers_the_gradient_peak",)),
    Mutation(
        "update-in-backward-gradient-kept", "owlore_bench/train/step_in_backward.py",
        "        param.grad = None\n", "        pass  # (mutation) the gradient is kept after its update\n",
        ("tests/test_update_in_backward.py::test_train_cli_with_update_in_backward_lowers_the_gradient_peak",)),
]


def pytest(tests: tuple[str, ...] | list[str], exit_first: bool = True) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(["-x"] if exit_first else []),
               *tests]
    return subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def run_mutation(mutation: Mutation, backup_dir: Path) -> tuple[str, int | None]:
    """('yes' | 'no' | 'snippet not found ...', pytest exit code) for one planted bug; the file is restored."""
    path = REPO_ROOT / mutation.file
    source = path.read_text(encoding="utf-8")
    found = source.count(mutation.original)
    if found != 1:
        return f"snippet found {found}x: update the mutation", None
    backup = backup_dir / mutation.name
    shutil.copy2(path, backup)
    planted = source.replace(mutation.original, mutation.mutated, 1)
    try:
        path.write_text(planted, encoding="utf-8")
        code = pytest(mutation.tests)
    finally:
        now = path.read_text(encoding="utf-8")
        if now == planted:
            shutil.copy2(backup, path)
        elif now.count(mutation.mutated) == 1:  # edited meanwhile: undo only our snippet
            path.write_text(now.replace(mutation.mutated, mutation.original, 1), encoding="utf-8")
            print(f"  note: {mutation.file} changed during the run; only the mutated snippet was restored")
        elif now != source:
            print(f"  WARNING: {mutation.file} changed during the run; check it (backup: {backup})")
    return ("yes" if code == 1 else f"no (pytest exit {code})"), code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the mutation names and exit")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the tests on the unmutated source")
    args = parser.parse_args(argv)
    if args.list:
        for mutation in MUTATIONS:
            print(f"{mutation.name:40} {mutation.file}")
        return 0
    chosen = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in MUTATIONS})
        if unknown:
            parser.error(f"unknown mutation(s): {', '.join(unknown)}; see --list")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    # A signal (Ctrl-C, kill) must still reach the `finally` that restores the file.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tests = list(dict.fromkeys(test for m in chosen for test in m.tests))
    if not args.skip_baseline:
        print(f"baseline: {len(tests)} test(s) on the unmutated source ...", flush=True)
        code = pytest(tests, exit_first=False)
        if code != 0:
            print(f"baseline failed (pytest exit {code}): these tests must pass before mutations mean anything")
            return 2
    rows, missing = [], False
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as backup_dir:
        for mutation in chosen:
            start = time.monotonic()
            print(f"{mutation.name} ...", flush=True)
            caught, code = run_mutation(mutation, Path(backup_dir))
            missing |= code is None
            rows.append((mutation.name, mutation.tests, caught, time.monotonic() - start))
    width = max(len(name) for name, *_ in rows)
    print(f"\n{'mutation':{width}}  {'caught':22}  {'time':>5}  expected to fail")
    for name, tests_, caught, seconds in rows:
        print(f"{name:{width}}  {caught:22}  {seconds:4.0f}s  {tests_[0]}")
        for test in tests_[1:]:
            print(f"{'':{width}}  {'':22}  {'':5}  {test}")
    survived = [name for name, _, caught, _ in rows if caught != "yes"]
    print(f"\n{len(rows) - len(survived)}/{len(rows)} mutations caught"
          + (f"; NOT caught: {', '.join(survived)}" if survived else ""))
    if missing:
        return 2
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
