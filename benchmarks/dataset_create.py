"""`lfm dataset create` speed and memory, side by side in one run.

1. A generated corpus of mixed documents (txt, md, html, pdf; a share are near copies of
   others), built into a dataset with near-duplicate detection on: documents per second and
   peak memory with one process and with one worker per core, and on half the corpus, to show
   that memory does not grow with the corpus (documents are streamed); then 8-page PDFs, where
   reading dominates, with one process and one worker per core.
2. Near-duplicate detection alone (MinHash signatures + LSH) on 100,000 records.

Each measurement runs in a fresh process; peak RSS is the main process's and the largest
worker's (ru_maxrss). Writes results/dataset_create.json.

    python benchmarks/dataset_create.py [--docs 2000] [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "dataset_create.json"
_VOCABULARY = (
    "probe valve sensor orchard soil moisture battery radio station pump filter schedule "
    "controller dashboard alert firmware export calibration season cable electrode water "
    "terrain range reading threshold zone garden tree irrigation pressure flow meter"
)
WORDS = _VOCABULARY.split()


def sentence(rng: random.Random, subject: str) -> str:
    words = rng.sample(WORDS, 9)
    return f"The {subject} is a {words[0]} that {words[1]}s the {words[2]} near the {words[3]} " \
        f"every {rng.randint(2, 60)} minutes with {words[4]} and {words[5]} {words[6]}."  # fmt: skip


def body(rng: random.Random, index: int) -> list[tuple[str, str]]:
    """Sections of (heading, paragraph text) for document ``index``."""
    sections = []
    for s in range(rng.randint(2, 4)):
        subject = f"{rng.choice(WORDS)} {index}-{s}"
        text = " ".join(sentence(rng, subject) for _ in range(rng.randint(3, 6)))
        sections.append((f"{subject.title()} section", text))
    return sections


def write_corpus(root: Path, count: int, seed: int = 0) -> None:
    from fpdf import FPDF

    rng = random.Random(seed)
    root.mkdir(parents=True)
    kept: list[list[tuple[str, str]]] = []
    for i in range(count):
        if kept and rng.random() < 0.1:  # a near copy of an earlier document
            copied = rng.choice(kept)  # one word changed: its records are near duplicates
            sections = [(copied[0][0], copied[0][1].replace("minutes", "min", 1)), *copied[1:]]
        else:
            sections = body(rng, i)
            kept = [*kept[-50:], sections]
        kind = ("txt", "md", "html", "pdf")[i % 4]
        path = root / f"doc{i:05}.{kind}"
        if kind == "txt":
            path.write_text("\n\n".join(t for _, t in sections))
        elif kind == "md":
            path.write_text("\n\n".join(f"## {h}\n\n{t}" for h, t in sections))
        elif kind == "html":
            parts = "".join(f"<h2>{h}</h2><p>{t}</p>" for h, t in sections)
            path.write_text(f"<html><head><script>x()</script></head><body>{parts}</body></html>")
        else:
            pdf = FPDF()
            pdf.add_page()
            pdf.set_font("Helvetica", size=10)
            for h, t in sections:
                pdf.multi_cell(0, 5, f"{h}\n{t}\n", new_x="LMARGIN", new_y="NEXT")
            pdf.output(str(path))


def write_pdf_corpus(root: Path, count: int, pages: int, seed: int = 1) -> None:
    """Longer PDFs (``pages`` pages each): more reading work per document."""
    from fpdf import FPDF

    rng = random.Random(seed)
    root.mkdir(parents=True)
    for i in range(count):
        pdf = FPDF()
        pdf.set_font("Helvetica", size=10)
        for page in range(pages):
            pdf.add_page()
            for h, t in body(rng, i * 100 + page):
                pdf.multi_cell(0, 5, f"{h}\n{t}\n", new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(root / f"long{i:04}.pdf"))


CREATE = """
import json, resource, sys, time
from pathlib import Path
from lfm.dataset.create import create
from lfm.dataset.options import CreateOptions
start = time.perf_counter()
report = create(CreateOptions(sources=(sys.argv[1],), workers=int(sys.argv[3]), split_ratio=0.1),
                Path(sys.argv[2]))
seconds = time.perf_counter() - start
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "report": report,
    "main_cpu_seconds": own.ru_utime + own.ru_stime,
    "worker_cpu_seconds": kids.ru_utime + kids.ru_stime,
    "main_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

DEDUP = """
import json, random, resource, sys, time
from lfm.dataset.quality.dedup import Deduplicator, signature
rng = random.Random(1)
words = sys.argv[2].split()
records = []
planted = 0
for i in range(int(sys.argv[1])):
    if records and rng.random() < 0.05:
        planted += 1
        base = rng.choice(records[-1000:]).split()
        base[rng.randrange(len(base))] = rng.choice(words)  # one word changed
        records.append(" ".join(base))
    else:
        records.append(" ".join(rng.choice(words) + str(rng.randint(0, 999)) for _ in range(60)))
start = time.perf_counter()
signatures = [signature(r) for r in records]
signed = time.perf_counter() - start
dedup = Deduplicator(0.85)
found = sum(dedup.check(r, str(i), s) is not None for i, (r, s) in enumerate(zip(records, signatures)))
total = time.perf_counter() - start
print(json.dumps({"records": len(records), "seconds": total, "signature_seconds": signed,
    "index_seconds": total - signed, "near_copies_planted": planted, "duplicates_found": found,
    "records_per_second": len(records) / total,
    "main_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def create_row(corpus: Path, out: Path, workers: int, docs: int) -> dict:
    result = run(CREATE, str(corpus), str(out), str(workers))
    report = result["report"]
    return {
        "documents": docs,
        "workers": workers,
        "seconds": round(result["seconds"], 2),
        "docs_per_second": round(docs / result["seconds"], 1),
        # CPU time does not depend on how busy the machine is: it shows where the work ran.
        "main_cpu_seconds": round(result["main_cpu_seconds"], 2),
        "worker_cpu_seconds": round(result["worker_cpu_seconds"], 2),
        "records_kept": report["records"]["kept"],
        "near_duplicates_removed": report["filters"]["near_duplicate"]["removed"],
        "exact_duplicates_removed": report["filters"]["exact_duplicate"]["removed"],
        "main_peak_rss_mib": round(result["main_rss_mib"], 1),
        "worker_peak_rss_mib": round(result["worker_rss_mib"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    rows = []
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        corpus, half, pdfs = Path(tmp) / "corpus", Path(tmp) / "half", Path(tmp) / "pdfs"
        started = time.perf_counter()
        write_corpus(corpus, args.docs)
        write_corpus(half, args.docs // 2)
        write_pdf_corpus(pdfs, args.docs // 8, pages=8)
        print(f"generated corpora in {time.perf_counter() - started:.0f}s", file=sys.stderr)
        cores = os.cpu_count() or 1
        for source, docs, workers in (
            (corpus, args.docs, 1),
            (corpus, args.docs, cores),
            (half, args.docs // 2, cores),
            (pdfs, args.docs // 8, 1),
            (pdfs, args.docs // 8, cores),
        ):
            out = Path(tmp) / f"out-{docs}-{workers}"
            rows.append({"corpus": source.name, **create_row(source, out, workers, docs)})
            print(rows[-1], file=sys.stderr)
    dedup = run(DEDUP, str(args.records), " ".join(WORDS))
    print(dedup, file=sys.stderr)
    results = {
        "benchmark": "dataset_create",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start_and_end": [load_start, os.getloadavg()[0]],
            "note": "a shared 2-core machine running other people's test suites: with a load "
            "average well above 2, wall-clock rates (and any gain from workers) are "
            "understated; CPU seconds show where the work ran",
        },
        "corpora": {
            "corpus": "mixed txt/md/html/pdf (25% each, 1-page PDFs), 10% near copies",
            "half": "the same generator, half as many documents (memory should not grow)",
            "pdfs": "8-page PDFs only: more reading work per document",
        },
        "settings": "offline generator, near-duplicate detection on, split_ratio 0.1",
        "create": rows,
        "near_dup_100k": {k: round(v, 2) if isinstance(v, float) else v for k, v in dedup.items()},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
