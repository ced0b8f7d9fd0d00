"""``nas report``: an interactive HTML report of one or more runs, one file that opens offline."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write an interactive HTML report of runs: fronts, progress, error EDF, trials"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"),
                   help="the HTML file (default report.html)")


def run(args: argparse.Namespace) -> int:
    from nas.search.html_report import write_report
    from nas.search.report import load_run

    path = write_report([load_run(r) for r in args.runs], args.output)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB; opens offline in any browser)")
    return 0
