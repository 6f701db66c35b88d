"""Helpers shared by several test files (imported as `helpers`; tests/ is on sys.path through conftest):
subprocess start/finish, the 2-rank equivalence checks (replicated and FSDP), a tiny sweep config, and a loopback
OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
import yaml
from conftest import REPO_ROOT


# ---------------------------------------------------------------- processes
def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)


def finish(process: subprocess.Popen, timeout: float = 400) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def resume_to_the_end(args: list[str], killed: Path, reference: Path) -> tuple[dict, dict]:
    """Rerun `owlore-bench ARGS` (it resumes from `killed`'s checkpoint) to a clean exit; (the weights it saved in
    `killed`/model, those an uninterrupted run saved in `reference`/model), both name -> tensor."""
    from safetensors.torch import load_file

    done = finish(start([sys.executable, "-m", "owlore_bench.cli", *args]))
    assert done.returncode == 0, done.stderr[-3000:]
    resumed, straight = (load_file(next((folder / "model").glob("*.safetensors"))) for folder in (killed, reference))
    assert resumed.keys() == straight.keys()
    return resumed, straight


@contextlib.contextmanager
def torchrun_worker(script: str, folder: Path, *args: str) -> Iterator[subprocess.Popen]:
    """A 2-rank torchrun of tests/`script` writing into `folder`, started now (the caller computes its references
    meanwhile); its process group is killed if the block ends before it does."""
    process = start([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                     str(REPO_ROOT / "tests" / script), str(folder), *args])
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def worker_results(process: subprocess.Popen, folder: Path,
                   require_success: bool = False) -> tuple[dict, subprocess.CompletedProcess]:
    """(the worker's results.pt from `folder`, its output) once it ends; its stderr tail where it wrote none."""
    done = finish(process)
    assert (done.returncode == 0 or not require_success) and (folder / "results.pt").is_file(), done.stderr[-3000:]
    return torch.load(folder / "results.pt", weights_only=False), done


def kill_after_logged_steps(command: list[str], metrics: Path, steps: int = 3, timeout: float = 400) -> None:
    """Start `command` (its own process group), wait until `metrics` holds `steps` lines, then SIGKILL the group:
    a run stopped between checkpoints. Fails if the run ends first."""
    process = start(command)
    deadline = time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= steps:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()



# ------------------------------------------- replicated data parallel (test_distributed, test_zoo_distributed)
@dataclass(frozen=True)
class Tolerance:
    loss: float  # per step, relative
    gradient: float  # each parameter's averaged gradient at each step: |g - g_ref| / |g_ref|
    update: float | None  # each parameter's change over the run: |w - w_ref| / |w_ref - w_0|
    weights: float  # the whole model's final weights: |w - w_ref| / |w_ref|


EXACT_ORDER = Tolerance(loss=1e-6, gradient=1e-4, update=1e-4, weights=1e-6)


def relative(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    return float((a - b).norm() / max(float((b if scale is None else scale).norm()), 1e-30))


def differences(run: dict, reference: dict, tol: Tolerance) -> list[str]:
    """Every way `run` (2 ranks) is further from `reference` (1 rank) than `tol` allows; [] when equivalent."""
    problems = [f"status {run['status']}: {run['error']}"] if run["status"] != "ok" else []
    for step, (loss, expected) in enumerate(zip(run["losses"], reference["losses"])):
        if abs(loss - expected) > tol.loss * abs(expected):
            problems.append(f"step {step}: loss {loss} vs {expected}")
    for step, (grads, expected) in enumerate(zip(run["grads"], reference["grads"])):
        if set(grads) != set(expected):
            problems.append(f"step {step}: gradients of {sorted(set(grads) ^ set(expected))} on one side only")
            continue
        worst = max(expected, key=lambda name: relative(grads[name], expected[name]))
        if relative(grads[worst], expected[worst]) > tol.gradient:
            problems.append(f"step {step}: gradient of {worst} off by {relative(grads[worst], expected[worst]):.1e}")
    final, ref, start = run["weights"], reference["weights"], reference["initial"]
    flat = [torch.cat([w[name].flatten() for name in sorted(ref)]) for w in (final, ref)]
    if relative(*flat) > tol.weights:
        problems.append(f"final weights off by {relative(*flat):.1e}")
    for name in ref if tol.update is not None else []:
        moved = ref[name] - start[name]
        if moved.norm() > 0 and relative(final[name], ref[name], moved) > tol.update:
            problems.append(f"update of {name} off by {relative(final[name], ref[name], moved):.1e}")
    return problems


# ---------------------------------------------------------------- FSDP (test_fsdp, test_fsdp_zoo)
@dataclass(frozen=True)
class Fp64Tolerance:
    loss: float = 1e-12  # each step's loss, relative
    weights: float = 1e-12  # the whole model's final weights: |w - w_ref| / |w_ref|
    update: float = 1e-10  # each parameter's change over the run: |w - w_ref| / |w_ref - w_0|


FP64 = Fp64Tolerance()


def fp64_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


def fp64_differences(run: dict, reference: dict, tol: Fp64Tolerance = FP64) -> list[str]:
    """Every way a sharded run is further from the 1-process reference than `tol` allows; [] when equivalent."""
    problems = [f"status {run['status']}: {run['error']}"] if run["status"] != "ok" else []
    if len(run["losses"] or []) != len(reference["losses"]):
        problems.append(f"{len(run['losses'] or [])} steps logged, the reference {len(reference['losses'])}")
    for step, (loss, expected) in enumerate(zip(run["losses"] or [], reference["losses"])):
        if abs(loss - expected) > tol.loss * abs(expected):
            problems.append(f"step {step}: loss {loss} vs {expected}")
    final, ref, start_ = run["weights"], reference["weights"], reference["initial"]
    if set(final) != set(ref):
        return [*problems, f"parameters differ: {sorted(set(final) ^ set(ref))}"]
    flat = [torch.cat([w[name].flatten() for name in sorted(ref)]) for w in (final, ref)]
    if fp64_relative(*flat) > tol.weights:
        problems.append(f"final weights off by {fp64_relative(*flat):.1e}")
    for name in ref:
        moved = ref[name] - start_[name]
        if moved.norm() > 0 and float((final[name] - ref[name]).norm() / moved.norm()) > tol.update:
            problems.append(f"update of {name} off by {float((final[name] - ref[name]).norm() / moved.norm()):.1e}")
    return problems


def state_outside_active_layers(run: dict) -> list[str]:
    """(rank, step, layers) wherever a rank's shards hold optimizer state of a layer that is not active."""
    return [f"rank {rank} step {record['step']}: state of {sorted(outside)}"
            for rank, records in enumerate(run["records_by_rank"]) for record in records
            if (outside := set(record["layers_with_state"]) - set(record["active_layers"]))]


# ---------------------------------------------------------------- sweeps (test_launch, test_fsdp_launch)
TASK = "arc_easy_choices"


def tiny_sweep_yaml(folder: Path, data: Path, out: str, **changes) -> Path:
    """A 2-method x 2-seed tiny-llama sweep, scored on 4 ARC-Easy questions."""
    config = {
        "name": "tiny_jobs",
        "model": "tiny-llama",
        "data": {"path": str(data), "template": "plain"},
        "train": {"steps": 4, "batch_size": 2, "max_length": 32, "lr": 3e-3, "checkpoint_every": 2,
                  "progress": False, "device": "cpu"},
        "methods": [{"name": "full_ft"}, {"name": "lora", "config": {"r": 4}}],
        "seeds": [0, 1],
        "eval": {"tasks": [TASK], "limit": 4, "batch_size": 4},
        "evaluate_base": False,
        "out": str(folder / out),
        **changes,
    }
    path = folder / f"{out}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def deterministic_columns(table):
    """Everything in a results table that a rerun must reproduce: accuracies, trainable params, the memory ledger.

    Not tokens/s, and not `contention` (whether other processes loaded the cores while a unit was timed)."""
    table = table.copy()
    table.attrs = {}
    return table[[c for c in table.columns if c[0] not in ("tokens_per_s", "contention")]]


# ---------------------------------------------------------------- a loopback OpenAI server
class FakeOpenAI:
    """A loopback /v1/chat/completions server. `script` holds what the next requests get, in order: an HTTP
    status (int), ('sleep', seconds) or a reply text; once it is used up, every request gets `default`
    (a text, or a function of the request body returning a text). It records every request body."""

    def __init__(self, script=(), default="Rating: [[5]]", hold_s: float = 0.0):
        self.script, self.default, self.hold_s = list(script), default, hold_s
        self.requests, self.in_flight, self.max_in_flight = [], 0, 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_POST(self):
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
        with self.lock:
            self.requests.append({"path": request.path, **body})
            step = self.script.pop(0) if self.script else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.hold_s)
            if isinstance(step, tuple):
                time.sleep(step[1])
                step = None
            if isinstance(step, int):
                return self._send(request, step, {"error": {"message": f"scripted {step}", "type": "server_error"}})
            text = step if step is not None else (self.default(body) if callable(self.default) else self.default)
            self._send(request, 200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": text}}],
                                      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        finally:
            with self.lock:
                self.in_flight -= 1

    @staticmethod
    def _send(request, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except OSError:  # the client gave up (timeout test)
            pass

    def spec(self, **options) -> str:
        query = "&".join(f"{key}={value}" for key, value in {"base_url": self.url, "api_key_env": "none",
                                                              **options}.items())
        return f"openai:test-judge?{query}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

