"""Entry point: ``python search.py --space regnet --budget 400MF`` is ``nas search ...``."""

import sys

from nas.cli import main

if __name__ == "__main__":
    sys.exit(main(["search", *sys.argv[1:]]))
