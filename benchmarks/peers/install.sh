#!/usr/bin/env bash
# Creates the two virtual environments the peer benchmarks run in:
#   .venvs/brian2  - Brian2 (C++ standalone device needs a C++ compiler: g++ on PATH)
#   .venvs/nest    - NEST 3.10 from its PyPI wheel
# They are separate because the two packages pin numpy differently.
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

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install.sh: $PYTHON not found (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if ! command -v g++ >/dev/null 2>&1; then
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
make_venv brian2 "$BRIAN2_SPEC" "$BRIAN2_NUMPY_SPEC"
make_venv nest "$NEST_SPEC"

echo "== installed"
"$VENVS/brian2/bin/python" -c 'import brian2, numpy; print("brian2", brian2.__version__, "numpy", numpy.__version__)'
PYNEST_QUIET=1 "$VENVS/nest/bin/python" -c 'import nest; print("nest", nest.__version__)'
