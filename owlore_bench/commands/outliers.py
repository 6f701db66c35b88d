"""`owlore-bench outliers`: layerwise outlier ratios D_l, OwLore's sampling probabilities and PL_Alpha_Hill.

Writes DIR/outliers.json (per layer: index, outlier_ratio_percent, probability, pl_alpha_hill; plus Spearman's
rho between D_l and alpha_l and the calibration settings) and DIR/outliers.png, and prints the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owlore_bench.commands import output_folder
from owlore_bench.errors import UserError


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("outliers", help=help_text,
                                   description="Per-layer outlier ratios D_l (OWL's metric), OwLore's sampling "
                                               "probabilities p_l = D_l / sum(D), and PL_Alpha_Hill per layer.",
                                   epilog="examples:\n"
                                          "  owlore-bench outliers --model smollm2-135m --out runs/outliers\n"
                                          "  owlore-bench outliers --model tiny-llama --n 4 --seq-len 64 "
                                          "--out /tmp/o\n")
    parser.add_argument("--model", required=True, help="HF id or path, 'smollm2-135m' or 'tiny-llama'")
    parser.add_argument("--calib", help="calibration text (.txt, or JSON records/strings); default: Python's docs")
    parser.add_argument("--n", type=int, default=32, help="calibration sequences (default 32; official 128)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sequence (default 256; official 2048)")
    parser.add_argument("--threshold", type=float, default=13.0, help="M: outlier if score > M x mean (default 13)")
    parser.add_argument("--ratios-file", help="use precomputed ratios (one per line) instead of calibration")
    parser.add_argument("--gamma", type=int, help="γ for the inclusion probabilities (default min(5, layers))")
    parser.add_argument("--no-cache", action="store_true", help="recompute even if a cached result exists")
    parser.add_argument("--out", required=True, help="output folder for outliers.json and outliers.png")
    parser.set_defaults(run=run)


def analyse(args) -> dict[str, Any]:
    """The per-layer table and summary facts (no file writing)."""
    from owlore_bench.analysis.heavy_tail import layer_alphas, spearman_rho
    from owlore_bench.analysis.outliers import (
        cached_outlier_ratios,
        calibration_text,
        calibration_windows,
        read_ratio_file,
    )
    from owlore_bench.models import load_model
    from owlore_bench.train.layers import decoder_layers
    from owlore_bench.train.sampling import inclusion_probabilities, layer_probabilities

    if args.threshold <= 0:
        raise UserError(f"--threshold: {args.threshold} must be positive (official M = 13)")
    if args.n <= 0 or args.seq_len <= 0:
        raise UserError(f"--n ({args.n}) and --seq-len ({args.seq_len}) must be positive")
    model, tokenizer = load_model(args.model, dtype="fp32", device="auto")
    count = len(decoder_layers(model))
    gamma = min(5, count) if args.gamma is None else args.gamma
    if not 0 < gamma <= count:
        raise UserError(f"--gamma: {gamma} must be between 1 and the model's {count} decoder layers")
    if args.ratios_file:
        ratios, info = read_ratio_file(args.ratios_file, count, field="--ratios-file"), {"source": args.ratios_file}
    else:
        windows = calibration_windows(calibration_text(args.calib), tokenizer, args.n, args.seq_len)
        ratios, info = cached_outlier_ratios(model, windows, args.threshold, use_cache=not args.no_cache)
        info = {"source": args.calib or "builtin:pydoc_data", **info}
    if ratios.sum() > 0:
        probabilities = layer_probabilities("outlier", count, ratios)
        exact = count <= 40 and int((probabilities > 0).sum()) >= gamma  # exact DP cost ~ C(L, γ-1)·L
        inclusion = inclusion_probabilities(probabilities, gamma) if exact else [None] * count
    else:  # no layer has an outlier at this M (e.g. a random test model): OwLore's rule is undefined
        probabilities, inclusion = [float("nan")] * count, [None] * count
    alphas = layer_alphas(model)
    rho, p_value = spearman_rho(ratios, alphas)
    layers = [{"index": i, "outlier_ratio_percent": float(ratios[i]), "probability": float(probabilities[i]),
               f"inclusion_probability_gamma{gamma}": None if inclusion[i] is None else float(inclusion[i]),
               "pl_alpha_hill": float(alphas[i])} for i in range(count)]
    return {"model": args.model, "threshold": args.threshold, "calibration": info, "layers": layers,
            "spearman_rho_outlier_vs_alpha": rho, "spearman_p_value": p_value}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = result["layers"]
    index = [row["index"] for row in layers]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, len(index) * 0.3), 6), sharex=True)
    top.bar(index, [row["outlier_ratio_percent"] for row in layers], color="tab:blue")
    top.set_ylabel("outlier ratio D_l (%)")
    twin = top.twinx()
    twin.plot(index, [row["probability"] for row in layers], color="tab:red", marker=".")
    twin.set_ylabel("p_l = D_l / ΣD", color="tab:red")
    bottom.plot(index, [row["pl_alpha_hill"] for row in layers], color="tab:green", marker="o")
    bottom.set_ylabel("PL_Alpha_Hill")
    bottom.set_xlabel("decoder layer")
    top.set_title(f"{result['model']}: M={result['threshold']:g}, Spearman rho(D, alpha) = "
                  f"{result['spearman_rho_outlier_vs_alpha']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    from owlore_bench.results import write_json_atomic

    out = output_folder(args.out)
    result = analyse(args)
    write_json_atomic(out / "outliers.json", result)
    plot(result, out / "outliers.png")
    key = next(k for k in result["layers"][0] if k.startswith("inclusion"))
    print(f"{'layer':>5}  {'D_l %':>8}  {'p_l':>7}  {key:>24}  {'alpha':>6}")
    for row in result["layers"]:
        shown = "-" if row[key] is None else f"{row[key]:.4f}"
        print(f"{row['index']:>5}  {row['outlier_ratio_percent']:8.4f}  {row['probability']:7.4f}  {shown:>24}  "
              f"{row['pl_alpha_hill']:6.3f}")
    print(f"Spearman rho(D_l, alpha_l) = {result['spearman_rho_outlier_vs_alpha']:.3f} "
          f"(p = {result['spearman_p_value']:.3g}); wrote {out / 'outliers.json'} and {out / 'outliers.png'}")
    return 0
