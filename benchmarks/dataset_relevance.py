"""What domain relevance costs `lfm dataset create`, side by side in one run.

The same generated corpus as benchmarks/dataset_create.py (mixed txt/md/html/pdf), built with
domain relevance off and on (scored, with a min_domain_relevance filter), alternating, each in
a fresh process: seconds, CPU seconds and peak RSS of the main process. With relevance on,
every chunk is indexed (one sparse TF-IDF row each) and the processed documents are spooled to
disk before records are scored. Writes results/dataset_relevance.json.

    python benchmarks/dataset_relevance.py [--docs 2000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataset_create import run, write_corpus  # noqa: E402  (a sibling script)

RESULTS = Path(__file__).resolve().parent / "results" / "dataset_relevance.json"

CREATE = """
import json, resource, sys, time
from pathlib import Path
from lfm.dataset.create import create
from lfm.dataset.options import CreateOptions
from lfm.dataset.quality import QualitySettings
quality = QualitySettings(min_domain_relevance=float(sys.argv[3]))
start = time.perf_counter()
report = create(CreateOptions(sources=(sys.argv[1],), workers=1, split_ratio=0.1,
                              quality=quality), Path(sys.argv[2]))
seconds = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "report": report,
    "cpu_seconds": own.ru_utime + own.ru_stime, "rss_mib": own.ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.2)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        write_corpus(corpus, args.docs)
        for repeat in range(args.repeats):
            for mode, threshold in (("off", 0.0), ("on", args.threshold)):
                out = Path(tmp) / f"out-{mode}-{repeat}"
                result = run(CREATE, str(corpus), str(out), str(threshold))
                report = result.pop("report")
                result.update(
                    records_kept=report["records"]["kept"],
                    off_domain_removed=report["filters"]["off_domain"]["removed"],
                    domain_relevance=report["metrics"].get("domain_relevance"),
                )
                runs[mode].append(result)
                print(mode, result, file=sys.stderr)

    def median(mode: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[mode]), 2)

    summary = {
        mode: {
            "seconds": median(mode, "seconds"),
            "docs_per_second": round(args.docs / median(mode, "seconds"), 1),
            "cpu_seconds": median(mode, "cpu_seconds"),
            "peak_rss_mib": median(mode, "rss_mib"),
            "records_kept": runs[mode][0]["records_kept"],
            "off_domain_removed": runs[mode][0]["off_domain_removed"],
            "domain_relevance": runs[mode][0]["domain_relevance"],
        }
        for mode in runs
    }
    results = {
        "benchmark": "dataset_relevance",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start_and_end": [load_start, os.getloadavg()[0]],
        },
        "settings": f"{args.docs} mixed documents, offline generator, 1 worker, near-dup on; "
        f"'on' = domain relevance scored with min_domain_relevance {args.threshold}; "
        f"medians of {args.repeats} alternating runs",
        "summary": summary,
        "runs": runs,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
