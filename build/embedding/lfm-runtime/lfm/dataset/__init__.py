"""Build fine-tuning datasets from documents: read, chunk, generate Q&A, filter, split, report.

The pipeline (:mod:`.create`) streams documents through readers (:mod:`.readers`), token
chunking (:mod:`.chunking`), a Q&A generator (:mod:`.generators`), quality control
(:mod:`.quality`), a split by source document (:mod:`.splits`) and writes the dataset, a
``dataset_report.json`` and a ``README.md`` dataset card atomically (:mod:`.publish`).
"""

from .errors import DatasetError

__all__ = ["DatasetError"]
