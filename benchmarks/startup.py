"""Start-up time of the lrlab command line against a two-command Typer app (prints ratios; not a timed test).

Baseline: a Typer app with two commands and nothing else, ``--help`` (what any Typer CLI pays: Python and
typer). Measured, each command run ``--repeats`` times round-robin as a fresh process, median wall time:

    help_ratio      lrlab --help                                  / baseline --help   (target <= 2)
    show_ratio      lrlab schedule show SPEC --at 0,100           / baseline --help   (target <= 4)

    python benchmarks/startup.py [--repeats 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = """
import typer

app = typer.Typer()


@app.command()
def first() -> None:
    "One."


@app.command()
def second() -> None:
    "Two."


app()
"""


def _seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "two_commands.py"
        baseline.write_text(BASELINE)
        lrlab = [sys.executable, "-c", "from lrlab.cli import main; main()"]  # what the `lrlab` script runs
        cases = {
            "baseline --help": [sys.executable, str(baseline), "--help"],
            "lrlab --help": [*lrlab, "--help"],
            "lrlab schedule show": [*lrlab, "schedule", "show", "cosine:peak=1e-3,total=1000", "--at", "0,100"],
        }
        for argv in cases.values():  # once each first: file-system caches warm for every case alike
            _seconds(argv)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, argv in cases.items():
                times[name].append(_seconds(argv))
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["baseline --help"]
    result = {
        "seconds": median,
        "help_ratio": median["lrlab --help"] / base,
        "show_ratio": median["lrlab schedule show"] / base,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"median of {args.repeats} fresh processes each (baseline: a two-command Typer app's --help)")
    for name, s in median.items():
        print(f"  {name:<22} {s * 1e3:7.0f} ms   {s / base:5.2f}x")
    print(f"lrlab --help {result['help_ratio']:.2f}x (target <= 2)")
    print(f"lrlab schedule show {result['show_ratio']:.2f}x (target <= 4)")


if __name__ == "__main__":
    main()
