"""The ``nas`` command's help and argument errors answer without importing torch or pandas."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nas.cli import COMMANDS

IMPORTS_PROBE = """
import sys
from nas.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "pandas", "ray", "optuna") if m in sys.modules)
print("heavy:" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], *([c, "--help"] for c in COMMANDS),
                                  ["search", "--trials", "many"], ["sample"]])
def test_help_and_argument_errors_import_no_heavy_library(argv):
    done = subprocess.run([sys.executable, "-c", IMPORTS_PROBE, *argv], capture_output=True,
                          text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "heavy:", done.stderr[-500:]
