"""Regenerate the small documents under tests/dataset/docs/ (run once; the output is committed).

    python tests/dataset/make_dataset_docs.py

PDFs are made with fpdf2 and pypdf (one encrypted), the .docx with python-docx; the corrupt
PDF and the binary file exercise the skip paths.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

DOCS = Path(__file__).resolve().parent / "docs"

GUIDE_MD = """# Orchard Sensor Network

The Orchard Sensor Network is a system of soil probes that report moisture to a base station.
Each probe measures soil moisture every ten minutes and sends the reading over a low-power radio.

## Installing a probe

A probe is a steel rod with three moisture electrodes near its tip. Push the probe into the soil
beside the tree until the top ring is level with the ground. Pair the probe by holding its button
for five seconds while the base station is in pairing mode.

## Calibration

Calibration is the process of matching probe readings to the real water content of the soil.
Run calibration once per season, after a heavy rain, when the soil is at field capacity.

```
# not a heading: a comment in a code block
probe calibrate --all
```

## Batteries

The battery pack lasts about two years. The base station warns when a probe battery drops below
fifteen percent. Replace the pack with the same lithium type.
"""

FAQ_TXT = """Frequently asked questions about the base station.

The base station is the unit that collects readings from every probe in range. It stores ninety
days of readings and uploads them to the dashboard each hour.

Radio range depends on terrain. In an open orchard a probe reaches the base station from four
hundred meters. Dense foliage and hills shorten the range.

The support address for replacement parts and repairs is help@orchard.example, and the phone line is +1 415 555 0132.
"""

# Windows-1252 text with accents: read through charset detection, not as UTF-8.
LATIN_TXT = (
    "Irrigation scheduling for the café garden.\n\n"
    "A schedule is a list of watering windows that the controller follows each day. The "
    "controller opens the valves during each window unless the soil is already moist. "
    "Déjà vu: the schedule repeats every week, and the crème brûlée stand keeps its own zone.\n"
)

HTML = """<!doctype html>
<html><head><title>Dashboard help</title>
<style>body { color: red; } .secret { display: none }</style>
<script>var tracking = "do not index this script";</script></head>
<body>
<nav>Home | Help</nav>
<h1>Dashboard</h1>
<p>The dashboard is a web page that shows moisture trends for every probe on a map.</p>
<h2>Alerts</h2>
<p>An alert is a message the dashboard sends when a probe reading crosses a threshold you set.
Alerts arrive by email or text message.</p>
<ul><li>Dry soil alerts fire below twenty percent moisture.</li>
<li>Flood alerts fire above sixty percent moisture.</li></ul>
<script>console.log("never in the text");</script>
</body></html>
"""

NOTES = [
    {
        "title": "Firmware updates",
        "text": "Firmware is the software inside each probe. Updates "
        "install over the radio at night so that readings are not interrupted.",
    },
    {
        "title": "Data export",
        "text": "Export is the feature that writes all readings to a CSV "
        "file. Open the dashboard, choose a date range, then press the export button.",
    },
]

GLOSSARY_CSV = (
    "term,definition\n"
    'Field capacity,"Field capacity is the amount of water soil holds after excess water drains '
    'away."\n'
    'Wilting point,"Wilting point is the moisture level below which plants cannot draw water '
    'from the soil."\n'
)

MANUAL_PAGES = [
    (
        "Maintenance manual",
        "Cleaning is the first maintenance task of each season. Wipe the electrodes with a damp "
        "cloth and check the cable for cracks. A cracked cable lets water reach the electronics.",
    ),
    (
        "Storage",
        "Winter storage is the practice of removing probes before the ground freezes. Store the "
        "probes indoors in a dry box and remove the battery packs.",
    ),
]


def write_pdf(path: Path, pages: list[tuple[str, str]]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))  # fixed: same bytes each time
    for title, body in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def write_encrypted_pdf(source: Path, path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    with path.open("wb") as handle:
        writer.write(handle)


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Valve controller", level=1)
    document.add_paragraph(
        "The valve controller is a box that opens and closes irrigation valves on command from "
        "the base station."
    )
    document.add_heading("Wiring", level=2)
    document.add_paragraph(
        "Connect each valve to one numbered terminal and the common wire to the terminal marked "
        "C. The controller supports up to twelve valves."
    )
    document.core_properties.created = datetime(2026, 1, 1)
    document.save(str(path))


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    (DOCS / "guide.md").write_text(GUIDE_MD, encoding="utf-8")
    (DOCS / "faq.txt").write_text(FAQ_TXT, encoding="utf-8")
    (DOCS / "legacy").mkdir(exist_ok=True)
    (DOCS / "legacy" / "cafe_schedule.txt").write_bytes(LATIN_TXT.encode("cp1252"))
    (DOCS / "dashboard.html").write_text(HTML, encoding="utf-8")
    (DOCS / "notes.jsonl").write_text(
        "".join(json.dumps(n) + "\n" for n in NOTES), encoding="utf-8"
    )
    (DOCS / "glossary.csv").write_text(GLOSSARY_CSV, encoding="utf-8")
    write_pdf(DOCS / "manual.pdf", MANUAL_PAGES)
    write_encrypted_pdf(DOCS / "manual.pdf", DOCS / "locked.pdf")
    write_docx(DOCS / "controller.docx")
    # The skip paths: a PDF cut short, a file of binary data, a type nobody reads.
    (DOCS / "broken.pdf").write_bytes(
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pag" + bytes(range(40))
    )
    (DOCS / "firmware.txt").write_bytes(bytes(range(256)) * 4)
    (DOCS / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))


if __name__ == "__main__":
    main()
