#!/usr/bin/env bash
# Creates ./.venv with ccbench installed (editable) and the given extras.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"
VENV="${CCBENCH_VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
STAMP="$VENV/.ccbench-installed${EXTRAS:+-$EXTRAS}"
if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt constraints.txt ]]; then
    exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt)
"${PIP[@]}" --upgrade pip
if [[ "$EXTRAS" == *test* || "$EXTRAS" == *torch* || "$EXTRAS" == *nnunet* ]]; then
    # torch first, as a CPU build, so no dependency pulls a CUDA build: from $TORCH_INDEX_URL
    # when set (https://download.pytorch.org/whl/cpu; PyPI's Linux wheel is the CUDA one), else
    # from pip's configured sources (this project's build machines carry a local CPU wheel).
    "${PIP[@]}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0"
fi
"${PIP[@]}" -e ".${EXTRAS:+[$EXTRAS]}"
if [[ "$EXTRAS" == *test* || "$EXTRAS" == *nnunet* ]]; then
    # nnunetv2 -> timm -> torchvision: the only torchvision build is a CUDA one that cannot load
    # with the CPU torch (`operator torchvision::nms does not exist`). Nothing ccbench runs of
    # nnU-Net imports it; removed so that an accidental import fails clearly.
    "$VENV/bin/python" -m pip uninstall --yes --quiet torchvision || true
fi
touch "$STAMP"
