"""`python -m lfm.compiler.cli_main ...` runs the lfm CLI (for environments without the script)."""

from .cli import lfm

if __name__ == "__main__":
    lfm()
