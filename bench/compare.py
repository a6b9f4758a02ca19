"""Benchmark two commits against each other, alternating, in one sitting.

    python bench/compare.py OLD NEW [--rounds 3] -- bench/run.py --size 10000

Each commit is checked out in a detached worktree beside this one (``<checkout>-bench-<sha>``)
and installed (``pip install --no-deps --target``) into a directory of its own; then the
command runs ``--rounds`` times for each, old and new alternating (a shared machine's load
drifts: alternating spreads it over both), from this checkout (the same benchmark script for
both) with ``PYTHONPATH`` pointing at that commit's installed copy. Every JSON line a run prints
is collected; at the end, per key (``kb`` and the other text fields name the row), the median
of each number and its spread (min-max) for old and new, and new / old. The worktrees and
installed copies are removed at the end (``--keep`` keeps them for another comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]
Row = tuple[tuple[str, str], ...]  # the text fields of a result line: what it is about


def installed(commit: str, work: Path) -> tuple[str, Path, Path]:
    """(the commit's short sha, its worktree, the directory it is installed in)."""
    sha = _git("rev-parse", "--short", commit).strip()
    tree = CHECKOUT.parent / f"{CHECKOUT.name}-bench-{sha}"
    if not tree.exists():
        _git("worktree", "add", "--detach", str(tree), sha)
    site = work / sha
    if not site.exists():
        shutil.rmtree(tree / "build", ignore_errors=True)  # setuptools reuses it across builds
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-compile",
                "--target",
                str(site),
                str(tree),
            ],
            check=True,
        )
    return sha, tree, site


def run_once(command: list[str], site: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    output = subprocess.run(
        [sys.executable, *command],
        cwd=CHECKOUT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def summary(results: dict[str, list[dict[str, Any]]], old: str, new: str) -> list[str]:
    """One line per (row, number): old and new medians with their spread, and new / old."""
    values: dict[tuple[Row, str, str], list[float]] = defaultdict(list)
    for sha, lines in results.items():
        for line in lines:
            row = tuple(sorted((k, str(v)) for k, v in line.items() if isinstance(v, str)))
            for key, value in line.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values[(row, key, sha)].append(float(value))
    lines = [
        f"| row | measure | {old} median (min-max) | {new} median (min-max) | new / old |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row, key in dict.fromkeys((row, key) for row, key, _ in values):
        before, after = values.get((row, key, old), []), values.get((row, key, new), [])
        if not before or not after:
            continue
        ratio = (
            statistics.median(after) / statistics.median(before)
            if statistics.median(before)
            else float("nan")
        )
        name = " ".join(f"{k}={v}" for k, v in row)
        lines.append(f"| {name} | {key} | {_spread(before)} | {_spread(after)} | {ratio:.3f} |")
    return lines


def _spread(numbers: list[float]) -> str:
    return f"{statistics.median(numbers):.4g} ({min(numbers):.4g}-{max(numbers):.4g})"


def _git(*argv: str) -> str:
    return subprocess.run(
        ["git", *argv], cwd=CHECKOUT, check=True, capture_output=True, text=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the worktrees and copies")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]  # the benchmark and its arguments
    if not command:
        parser.error("give the benchmark to run after --, e.g. -- bench/run.py --size 10000")
    work = Path(tempfile.mkdtemp(prefix="remediate-compare-"))
    commits = [installed(args.old, work), installed(args.new, work)]
    results: dict[str, list[dict[str, Any]]] = {sha: [] for sha, _, _ in commits}
    try:
        for number in range(1, args.rounds + 1):
            for sha, _, site in commits:
                lines = run_once(command, site)
                results[sha] += lines
                print(
                    json.dumps({"round": number, "commit": sha, "results": lines}),
                    file=sys.stderr,
                    flush=True,
                )
        print("\n".join(summary(results, commits[0][0], commits[1][0])))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            for _, tree, _ in commits:
                _git("worktree", "remove", "--force", str(tree))


if __name__ == "__main__":
    main()
