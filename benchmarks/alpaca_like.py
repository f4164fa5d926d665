"""A deterministic Alpaca-style dataset for the throughput benchmarks (nothing downloaded).

Lengths follow the shape of the Alpaca data: short instructions, an optional input for about
40% of records, and responses from one line to several paragraphs (a long tail), so batches
padded to their longest example waste a realistic share of their tokens.

    python benchmarks/alpaca_like.py OUT.jsonl [--records N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from lfm.runtime.tiny_corpus import lines


def records(count: int, seed: int = 0) -> list[dict[str, str]]:
    """``count`` records with instruction, input and output fields."""
    rng = random.Random(seed)
    words = " ".join(lines()).split()

    def text(count: int) -> str:
        start = rng.randrange(len(words) - count)
        return " ".join(words[start : start + count])

    out = []
    for _ in range(count):
        instruction = text(rng.randint(3, 10))
        context = text(rng.randint(3, 20)) if rng.random() < 0.4 else ""
        # Response length in words: mostly short, sometimes long (log-normal, capped).
        output = text(min(400, max(1, round(rng.lognormvariate(2.0, 1.2)))))
        out.append({"instruction": instruction, "input": context, "output": output})
    return out


def write(path: Path, count: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(count, seed)),
        encoding="utf-8",
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write(args.out, args.records, args.seed))


if __name__ == "__main__":
    main()
