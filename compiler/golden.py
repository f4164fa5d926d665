"""The golden bundles: every example config compiles into build/<its file name>/.

`python -m lfm.compiler.golden --regen` rewrites them after an intended compiler change;
`python -m lfm.compiler.golden` (and the test suite) checks that they are up to date.
Run from the repository root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .diagnostics import CompileError
from .pipeline import compile_config
from .write import check_bundle, write_bundle

EXAMPLES = Path("examples")
BUILD = Path("build")


def example_configs(root: Path = Path(".")) -> list[Path]:
    found = [*(root / EXAMPLES).glob("*.yaml"), *(root / EXAMPLES).glob("*.json")]
    return sorted(found)


def bundle_dir_for(config: Path, root: Path = Path(".")) -> Path:
    return root / BUILD / config.stem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--regen", action="store_true", help="rewrite build/ from examples/")
    args = parser.parse_args(argv)
    stale = []
    for config in example_configs():
        out = bundle_dir_for(config)
        try:
            result = compile_config(config, out)
        except CompileError as exc:
            print(f"{config}: does not compile:\n{exc}", file=sys.stderr)
            return 1
        if args.regen:
            write_bundle(result.files, out)
            print(f"wrote {out}")
        elif check_bundle(result.files, out):
            stale.append(str(config))
    if stale:
        print(f"stale bundles for: {', '.join(stale)}; run `make regen`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
