"""Fixtures for the embedding tests: a tiny BERT-like sentence-transformers model built locally
(no download) and question -> passage pairs about a few made-up documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_encoder(out_dir: Path, corpus: list[str], *, seed: int = 0) -> Path:
    """A 2-layer BERT (hidden 32) with a WordPiece vocabulary of the corpus's words, plus mean
    pooling, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for text in corpus for w in re.findall(r"\w+|[^\w\s]", text.lower())})
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "raw"
    raw.mkdir(exist_ok=True)
    (raw / "vocab.txt").write_text("\n".join(SPECIAL + words[:4000]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(raw / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    encoder = modules.Transformer(str(raw), max_seq_length=128)
    pooling = modules.Pooling(encoder.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[encoder, pooling], device="cpu")
    target = out_dir / "encoder"
    model.save(str(target))
    return target


TOPICS = {
    "lists": [
        "Lists hold items in order and can be changed after creation.",
        "A list grows with append and shrinks with pop.",
    ],
    "dicts": [
        "Dictionaries map keys to values with fast lookup.",
        "Keys of a dictionary must be hashable values.",
    ],
    "loops": [
        "A for loop walks over every item of a sequence.",
        "A while loop repeats while its condition stays true.",
    ],
    "files": [
        "Files are opened with open and closed by a with block.",
        "Reading a file returns its text as one string.",
    ],
    "errors": [
        "Exceptions are caught with try and except clauses.",
        "A finally clause runs whether or not an error happened.",
    ],
}


def pair_records() -> list[dict[str, str]]:
    """Two questions per passage, two passages per document, five documents."""
    records = []
    for document, passages in TOPICS.items():
        for passage in passages:
            head = passage.split(" ")[0].lower()
            for question in (f"What about {head}?", f"Explain: {passage[:30].lower()}"):
                records.append({"question": question, "passage": passage, "document": document})
    return records


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [p for passages in TOPICS.values() for p in passages]
    corpus += [r["question"] for r in pair_records()]
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny"), corpus)
