"""Benchmark: how plan and apply time (and peak memory) grow with the number of users.

    python bench/growth.py [--sizes 1000 3000 10000 30000 100000] [--kb kb842101 kb278447]

Runs ``bench/run.py``'s measurement for each KB and size, each in a fresh interpreter, and
prints one JSON line per run (see run.py for the fields) plus, per KB, the time per user at each
size and the exponent b of the least-squares fit time = a * users ** b (b = 1: linear), for wall
time of plan and of apply and for the CPU time of both (which a loaded machine distorts less).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import Any

from run import measure_apart

from remediate.fakes.scenarios import SCENARIOS


def fitted_exponent(sizes: Sequence[int], seconds: Sequence[float]) -> float:
    """The slope of log(seconds) over log(sizes), least squares."""
    xs = [math.log(size) for size in sizes]
    ys = [math.log(max(value, 1e-9)) for value in seconds]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def summary(kb: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    sizes = [int(row["size"]) for row in rows]
    result: dict[str, Any] = {"kb": kb, "sizes": sizes}
    for phase in ("plan_s", "apply_s"):
        seconds = [float(row[phase]) for row in rows]
        name = phase.removesuffix("_s")
        result[f"{name}_ms_per_user"] = [
            round(1000 * s / n, 3) for s, n in zip(seconds, sizes, strict=True)
        ]
        result[f"{name}_exponent"] = round(fitted_exponent(sizes, seconds), 3)
    if all("cpu_s" in row for row in rows):  # plan + apply in CPU time: load distorts it less
        cpu = [float(row["cpu_s"]) for row in rows]
        result["cpu_ms_per_user"] = [
            round(1000 * s / n, 3) for s, n in zip(cpu, sizes, strict=True)
        ]
        result["cpu_exponent"] = round(fitted_exponent(sizes, cpu), 3)
    result["peak_rss_mb"] = [row["peak_rss_mb"] for row in rows]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000, 100000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--version", default=None)
    parser.add_argument("--kb", nargs="+", default=sorted(SCENARIOS))
    args = parser.parse_args()
    for kb in args.kb:
        rows = []
        for size in sorted(args.sizes):
            rows.append(measure_apart(kb, size, args.seed, args.version))
            print(json.dumps(rows[-1]), flush=True)
        if len(rows) > 1:
            print(json.dumps(summary(kb, rows)), flush=True)


if __name__ == "__main__":
    main()
