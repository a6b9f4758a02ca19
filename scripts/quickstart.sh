#!/usr/bin/env bash
# Install remediate, write a broken world (a cancelled Migration Wizard run, KB842101),
# preview the repair, apply it, and show that a second apply has nothing left to do.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
python -m pip install --quiet .
out=${QUICKSTART_DIR:-quickstart}
mkdir -p "$out"
set -x
remediate scenario kb842101 --size 25 --seed 7 --out "$out/broken.json"
remediate --state-dir "$out/state" plan kb842101 --world "$out/broken.json" || [ $? -eq 2 ]
remediate --state-dir "$out/state" -q apply kb842101 --world "$out/broken.json" --yes \
  --save-world "$out/repaired.json"
remediate --state-dir "$out/state" -q apply kb842101 --world "$out/repaired.json" --yes
remediate --state-dir "$out/state" runs
