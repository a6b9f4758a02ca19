#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: ruff, mypy --strict, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
python -m pip install --quiet -e '.[test]'
ruff check .
ruff format --check .   # the tree as `ruff format .` leaves it (pyproject [tool.ruff.format])
# mypy cannot follow the package-dir mapping (fakes/ -> remediate.fakes) of an editable
# install, so it checks the package as installed (a copy made for it), and the tests against
# that copy; run from here, it reads pyproject.toml's [tool.mypy] (strict).
# setuptools reuses ./build between builds, which would keep files deleted since: start clean.
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
rm -rf build
python -m pip install --quiet --no-deps --no-compile --target "$site" .
python -m mypy --no-error-summary "$site/remediate" tests
scripts/install-samba.sh
python -m pytest "$@"
