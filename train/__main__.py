"""`python -m train CONFIG [--set k=v ...]` is `framing train CONFIG ...`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
