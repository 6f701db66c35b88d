"""It starts fast and quietly: `--help` imports no torch or scipy, and nothing asks the network at import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import REPO_ROOT

# A socket guard for a subprocess: every connection attempt (and name lookup) is recorded and refused.
GUARD = textwrap.dedent("""
    import socket, sys
    ATTEMPTS = []
    def refuse(*args, **kwargs):
        ATTEMPTS.append(repr(args[:2]))
        raise OSError("network refused by the test")
    socket.socket.connect = lambda self, address: refuse(address)
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
""")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", GUARD + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT),
                                                           "OMP_NUM_THREADS": "1"})


def test_help_imports_neither_torch_nor_scipy():
    done = _python("""
        import contextlib, io
        from owlore_bench.cli import main
        for argv in (["--help"], []):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                try:
                    main(argv)
                except SystemExit:
                    pass
            assert "COMMAND" in out.getvalue() and "train" in out.getvalue(), out.getvalue()
        heavy = sorted(name for name in ("torch", "scipy", "transformers", "lm_eval", "pandas", "pydantic")
                       if name in sys.modules)
        print(heavy)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_hub_kernel_lookup_asks_no_server_inside_the_switch():
    """What bitsandbytes' CPU backend does at import (on CPUs with AVX512-BF16): kernels.get_kernel(...). Outside
    no_kernel_downloads it tries the network (the guard sees it); inside, it makes no attempt at all."""
    done = _python("""
        import json
        from kernels import get_kernel
        from owlore_bench.no_kernel_downloads import no_kernel_downloads

        def lookup():
            try:
                get_kernel("kernels-community/quantization-bitsandbytes", version=1)
            except Exception:
                pass
            attempts = len(ATTEMPTS)
            ATTEMPTS.clear()
            return attempts

        sys.modules.pop("bitsandbytes", None)
        with no_kernel_downloads():
            inside = lookup()
        print(json.dumps({"outside": lookup(), "inside": inside}))
    """)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["outside"] > 0  # the guard does see a real lookup (so the next line can fail)
    assert counts["inside"] == 0


def test_building_a_galore_optimizer_is_silent_and_offline():
    done = _python("""
        import torch
        from owlore_bench.train.galore_groups import galore_adamw

        weight = torch.nn.Parameter(torch.randn(8, 8))
        optimizer = galore_adamw([{"params": [weight], "rank": 2, "update_proj_gap": 1, "scale": 1.0,
                                   "proj_type": "std"}], lr=1e-3, weight_decay=0.0)
        weight.grad = torch.randn(8, 8)
        optimizer.step()
        print("attempts", len(ATTEMPTS))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "attempts 0"
    assert "kernels-community" not in done.stderr and "gemm_4bit" not in done.stderr, done.stderr


def test_train_and_eval_outside_a_git_checkout_print_nothing_unactionable(tmp_path, tiny_data):
    """No 'fatal: not a git repository' (lm-eval's git-hash lookup), no FutureWarning, no traceback; a warning of
    the suite's own is one 'owlore-bench: warning:' line."""
    from conftest import run_cli

    train = run_cli("train", "--method", "galore", "--model", "tiny-llama", "--data", str(tiny_data), "--template",
                    "plain", "--steps", "1", "--batch-size", "2", "--max-length", "64", "--set",
                    "train.progress=false", "--out", str(tmp_path / "run"), cwd=tmp_path)
    evaluate = run_cli("eval", "--run", str(tmp_path / "run"), "--tasks", "boolq_labels", "--limit", "2", cwd=tmp_path)
    for done in (train, evaluate):
        assert done.returncode == 0, done.stderr
        assert "fatal:" not in done.stderr and "FutureWarning" not in done.stderr and "Traceback" not in done.stderr
    assert [line for line in train.stderr.splitlines() if line] == [
        line for line in train.stderr.splitlines() if line.startswith("owlore-bench: warning: galore rank")]
