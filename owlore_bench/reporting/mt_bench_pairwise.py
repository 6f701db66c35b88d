"""MT-Bench pairwise tables: win / tie / loss rates of every judged pair, from FastChat pair files
(`<experiment>/mt_bench_pairwise/<judge>_pair.jsonl`, mtbench/pairwise.py), written by `owlore-bench report` and
printed by `mtbench judge --mode pairwise-*`.

Counting is FastChat's show_result.py (display_result_pairwise): a game is one (question, turn) judged in both
answer orders; a game with an 'error' verdict in either order is dropped (counted here as Errors); it is a tie
when game 1 says tie or the two orders disagree (position bias cancels out to a tie); otherwise the model both
orders chose wins. Win / Tie / Loss % = wins / ties / losses over the games counted, Adjusted % = (wins + ties / 2)
over them (FastChat's win_rate_adjusted), all in percent.
Rows: one per judged pair, from model_1's side ('lora' vs 'full_ft'), best Adjusted % first (show_result.py's
order); the runner's model ids (`<experiment>/<label>/seed-<s>`) are pooled over seeds under their label.
Intervals: 95 % percentile bootstrap over questions (scipy.stats.bootstrap, paired: a drawn question brings all its
games along, both turns and every seed; reporting/bootstrap.py), N_BOOT resamples, seeded; none below two
questions; where every question gives the same rate, an exact bound instead (`rate`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from owlore_bench.mtbench.judges import judge_heading
from owlore_bench.mtbench.pairwise import PAIR_FOLDER, model_row
from owlore_bench.reporting.bootstrap import CONFIDENCE, N_BOOT, interval_and_p, paired_draws
from owlore_bench.reporting.score_statistics import degenerate_bounds
from owlore_bench.results import read_jsonl, write_text_atomic

RATES = {"win": "Win %", "tie": "Tie %", "loss": "Loss %", "adjusted": "Adjusted %"}


def game_outcome(row: dict[str, Any]) -> str | None:
    """'model_1', 'model_2' or 'tie' as show_result.py counts a pair row; None for a game it drops."""
    g1, g2 = row["g1_winner"], row["g2_winner"]
    if "error" in (g1, g2):
        return None
    return "tie" if g1 == "tie" or g1 != g2 else g1


def row_names(model_1: str, model_2: str) -> tuple[str, str]:
    """The two table rows a game is between: their labels, or the model ids when both share one label."""
    names = model_row(model_1)[0], model_row(model_2)[0]
    return names if names[0] != names[1] else (str(model_1), str(model_2))


def tally(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(row, opponent): {questions: {question_id: [wins, ties, losses]}, errors: dropped games}}, from the side
    of the pair's model_1 as first seen (a later row with the models swapped is counted from that side too)."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        name, other = row_names(row["model_1"], row["model_2"])
        outcome, flipped = game_outcome(row), (other, name) in pairs
        tallied = pairs.setdefault((other, name) if flipped else (name, other), {"questions": {}, "errors": 0})
        if outcome is None:
            tallied["errors"] += 1
            continue
        won = {"model_1": 0, "tie": 1, "model_2": 2}[outcome]
        counts = tallied["questions"].setdefault(row["question_id"], [0, 0, 0])
        counts[2 - won if flipped else won] += 1
    return pairs


def rate(numerators: np.ndarray, games: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """(percent, low, high): 100 x sum(numerators) / sum(games) over questions, with its paired percentile
    bootstrap over questions (bootstrap.paired_draws; nan bounds below two questions). Where every question gives
    the same rate (a zero-width bootstrap), the exact bound on the share of questions that could go otherwise
    (score_statistics.degenerate_bounds, between 0 and 100 %)."""
    point = 100 * float(numerators.sum() / games.sum())
    if numerators.size < 2:
        return point, math.nan, math.nan
    draws = paired_draws((numerators, games), lambda x, n, axis=-1: 100 * x.sum(axis) / n.sum(axis), n_boot, seed)
    low, high, _ = interval_and_p(draws, CONFIDENCE)
    if low == high:
        low, high = degenerate_bounds(point, int(numerators.size), 0.0, 100.0, CONFIDENCE)
    return point, low, high


def pairwise_table(rows: list[dict[str, Any]], n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One line per pair (tally): model, versus, <rate>, <rate>_low, <rate>_high for win / tie / loss /
    adjusted (percent), wins, ties, losses, games (counted), questions, errors (games dropped)."""
    lines = []
    for (name, other), tallied in tally(rows).items():
        counts = np.array(list(tallied["questions"].values()), dtype=float).reshape(-1, 3)
        line: dict[str, Any] = {"model": name, "versus": other}
        if counts.size:
            games = counts.sum(axis=1)
            numerators = {"win": counts[:, 0], "tie": counts[:, 1], "loss": counts[:, 2],
                          "adjusted": counts[:, 0] + counts[:, 1] / 2}
            for key, values in numerators.items():
                line[key], line[f"{key}_low"], line[f"{key}_high"] = rate(values, games, n_boot, seed)
        wins, ties, losses = counts.sum(axis=0).astype(int) if counts.size else (0, 0, 0)
        line.update(wins=wins, ties=ties, losses=losses, games=int(counts.sum()), questions=len(counts),
                    errors=tallied["errors"])
        lines.append(line)
    columns = ["model", "versus", *(f"{k}{s}" for k in RATES for s in ("", "_low", "_high")), "wins", "ties",
               "losses", "games", "questions", "errors"]
    table = pd.DataFrame(lines).reindex(columns=columns)
    return table.sort_values("adjusted", ascending=False, kind="stable", ignore_index=True)  # as show_result.py


def _cell(line: pd.Series, key: str) -> str:
    if pd.isna(line[key]):
        return "—"
    bounds = "" if pd.isna(line[f"{key}_low"]) else f" [{line[f'{key}_low']:.1f}, {line[f'{key}_high']:.1f}]"
    return f"{line[key]:.1f}{bounds}"


CAPTION = ("Games of Model against vs, each (question, turn) judged in both answer orders and counted as FastChat's "
           "show_result.py: a tie when game 1 says tie or the two orders disagree; games with an unparsed verdict in "
           "either order are left out (Errors). Adjusted = wins + ties / 2. [low, high]: 95 % bootstrap interval "
           "over questions (both turns and every seed of a question drawn together): it covers which questions were "
           "asked, not the judge's noise.")


def pairwise_display(table: pd.DataFrame) -> pd.DataFrame:
    """The shown table of a pairwise_table: Model, vs, the four rates as '45.0 [30.0, 60.0]', the counts."""
    return pd.DataFrame({"Model": table["model"], "vs": table["versus"],
                         **{title: [_cell(line, key) for _, line in table.iterrows()] for key, title in RATES.items()},
                         "Games": table["games"], "Questions": table["questions"], "Errors": table["errors"]})


def render_pairwise(table: pd.DataFrame, title: str) -> str:
    """A markdown section: title, what the cells are (CAPTION), and the table (pairwise_display)."""
    shown = pairwise_display(table).to_markdown(index=False, disable_numparse=True)
    return f"## {title}\n\n{CAPTION}\n\n{shown}\n"


def judge_title(rows: list[dict[str, Any]], path: Path) -> str:
    identity = next((row["judge_identity"] for row in reversed(rows) if row.get("judge_identity")), None)
    judge = judge_heading(path.stem.removesuffix("_pair"), identity)
    return f"MT-Bench pairwise, judge {judge} ({path.parent.parent.name}/{PAIR_FOLDER}/{path.name})"


def pair_files(sources: list[str | Path]) -> list[Path]:
    """The pair files of each source: <source>/mt_bench_pairwise/*_pair.jsonl, else those one folder below (a
    folder of experiments)."""
    found: list[Path] = []
    for source in map(Path, sources):
        files = sorted(source.glob(f"{PAIR_FOLDER}/*_pair.jsonl")) or \
            sorted(source.glob(f"*/{PAIR_FOLDER}/*_pair.jsonl"))
        found += [path for path in files if path not in found]
    return found


def pairwise_tables(sources: list[str | Path], n_boot: int = N_BOOT) -> list[tuple[str, pd.DataFrame, Path]]:
    """(title, pairwise_table, pair file) of every non-empty pair file of `sources` (pair_files)."""
    tables = []
    for path in pair_files(sources):
        rows = read_jsonl(path)
        if rows:
            tables.append((judge_title(rows, path), pairwise_table(rows, n_boot), path))
    return tables


def write_pairwise_files(tables: list[tuple[str, pd.DataFrame, Path]], out_dir: str | Path) -> list[Path]:
    """mt_bench_pairwise.md and .csv (one section / pair_file column per pairwise_tables entry); [] without any."""
    if not tables:
        return []
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "mt_bench_pairwise.md", "\n".join(render_pairwise(table, title)
                                                                   for title, table, _ in tables))
    write_text_atomic(out_dir / "mt_bench_pairwise.csv", pd.concat(
        [table.assign(pair_file=str(path)) for _, table, path in tables]).to_csv(index=False))
    return [out_dir / "mt_bench_pairwise.md", out_dir / "mt_bench_pairwise.csv"]
