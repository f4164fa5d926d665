"""How large a document or a dataset file may be, and why each limit has its value.

A document over a limit is skipped with the reason in the dataset report, like any unreadable
document; a dataset file over one is a one-line error. Each is checked before the expensive
step (reading the file, unpacking a .docx, extracting a PDF's pages), so one hostile or broken
file costs a line, not the machine's memory. Every worker process reads one document at a time.
"""

from lfm.runtime.inputs import MiB

# Any document, checked before it is read. A reader holds the whole file and its parsed form in
# memory. 64 MiB is a long book as a PDF with its pictures, or some ten million words of text.
MAX_DOCUMENT_BYTES = 64 * MiB
# An HTML page's parse tree takes up to 70 times its text (9 MiB of short paragraphs: 670 MB and
# 8 seconds). Real pages are well under 2 MB; a long single-page manual, a few.
MAX_HTML_BYTES = 8 * MiB

# A .docx is a zip. python-docx unpacks every part into memory and parses the XML ones, so the
# total the zip declares unpacked is checked before anything is unpacked. Python's zipfile stops
# a stored or deflated part at its declared size (the only methods Word writes, and the only ones
# accepted), so no part unpacks to more than it declares. A 500-page report's XML is a few MB;
# pictures barely compress, so a real .docx unpacks to about its own size.
MAX_DOCX_UNPACKED_BYTES = 128 * MiB
# Word's XML deflates 5-20 times; a zip bomb, hundreds or thousands of times. Parts under
# DOCX_RATIO_CHECKED_FROM unpacked are too small to matter, whatever their ratio.
MAX_DOCX_COMPRESSION_RATIO = 100
DOCX_RATIO_CHECKED_FROM = 1 * MiB

# pypdf extracts pages one by one; the page count is known before the first. 2000 pages is
# twice a very long book; beyond it a file is more likely a scan dump than a source of text.
MAX_PDF_PAGES = 2000

# `lfm dataset check|convert` input. JSON Lines stream record by record, so only one line is
# bounded: a record is a conversation, a few KB; 16 MiB is a whole book in one record.
MAX_JSONL_LINE_BYTES = 16 * MiB
# A .json file is parsed whole (its records take two to three times the text in memory); JSON
# Lines have no total limit, so a dataset larger than this belongs in a .jsonl.
MAX_JSON_DATASET_BYTES = 256 * MiB
