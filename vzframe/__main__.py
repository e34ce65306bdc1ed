import sys

from vzframe.cli import main

if __name__ == "__main__":
    sys.exit(main())
