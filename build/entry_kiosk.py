"""The frozen `kiosk` executable's entry point: the console script kiosk.cli:main."""

import sys

from kiosk.cli import main

if __name__ == "__main__":
    sys.exit(main())
