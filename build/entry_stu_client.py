"""The frozen `stu-client` executable's entry point: the console script stu_client.cli:main."""

import sys

from stu_client.cli import main

if __name__ == "__main__":
    sys.exit(main())
