#!/usr/bin/env bash
# GPU memory check for a CUDA machine that has only this repository (no network, no model files).
#
# Each method runs ~10 steps in bf16 with the measured profiler on the smollm2-135m and LLaMA2-7B architectures
# (random weights from the shipped configs; batch 16, seq 512, gradient checkpointing) next to the estimator's
# prediction; results go to results/gpu/gpu_check_<card>.{md,json}. Target: under 6 minutes on one H100.
#
#   scripts/gpu_check.sh --fetch-wheels   # HERE, with network: galore-torch + pydantic wheels into .whl/ (~3 MB)
#   scripts/gpu_check.sh                  # THERE, from the repository root (installs .whl/*.whl if needed)
#   scripts/gpu_check.sh --smoke          # anywhere: tiny model on CPU, proves the script runs
#
# The GPU image has torch, transformers, peft, pandas, pyyaml, tqdm but not galore-torch, pydantic or bitsandbytes;
# galore-torch's __init__ imports bitsandbytes, so gpu_check.py registers an empty stand-in for it (8-bit
# optimizers are never used here). Wheels are for CPython 3.12 on x86-64 (the GPU image's Python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=(galore-torch==1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl "${WHEELS[@]}"
    exit 0
fi

has_packages() {  # find_spec, not import: galore_torch's import needs bitsandbytes (gpu_check.py stubs it)
    "$PYTHON" -c "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ('pydantic', 'galore_torch')) else 1)"
}
if ! has_packages && compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/owlore-gpu-site .whl/*.whl
    export PYTHONPATH="/tmp/owlore-gpu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PYTHON" scripts/gpu_check.py "$@"
