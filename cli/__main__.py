"""`python -m lfm.cli ...` runs the lfm CLI (for environments without the `lfm` script)."""

from .main import lfm

if __name__ == "__main__":
    lfm()
