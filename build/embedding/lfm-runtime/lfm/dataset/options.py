"""Everything one `dataset create` run needs, built from CLI flags or a model_config."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chunking import ChunkSettings
from .errors import DatasetError
from .formats import FORMATS
from .generators.base import GenerationSettings, pick_backend
from .quality.checks import QualitySettings


@dataclass(frozen=True)
class CreateOptions:
    sources: tuple[str, ...]
    format: str = "alpaca"
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    split_ratio: float = 0.0
    seed: int = 42
    include_metadata: bool = False
    # task: embedding: each pair keeps its chunk (metadata.passage) and document (metadata.source).
    keep_passages: bool = False
    augmentation: bool = False
    tokenizer: str | None = None  # a tokenizer path or id for chunk sizes; None: word count
    workers: int = 0  # processes for reading and chunking; 0: one per CPU core

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise DatasetError(f"format {self.format!r} is not one of {', '.join(FORMATS)}")
        if not 0 <= self.split_ratio < 1:
            raise DatasetError(f"split ratio should be in [0, 1), got {self.split_ratio}")
        if self.quality.judges and self.generation.backend == "offline":
            raise DatasetError(
                "model_judge rates pairs with the generator's model, and the offline generator "
                "has none: give qa_generation.model (a local model path, or a name at base_url)"
            )

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def fingerprint(self) -> dict[str, Any]:
        """The settings that shape the output (for cache keys and the report)."""
        from dataclasses import asdict

        data = asdict(self)
        data.pop("workers")
        if not data["keep_passages"]:  # (absent: the cache keys of earlier datasets hold)
            data.pop("keep_passages")
        else:
            # 2: passages redacted for personal data too; a dataset kept before is rebuilt.
            data["keep_passages"] = 2
        data.pop("sources")
        data["generation"].pop("cache_dir")
        return data


def options_from_config(
    dataset: dict[str, Any], *, sources: list[str], seed: int, tokenizer: str | None = None
) -> CreateOptions:
    """Options from a resolved model_config ``dataset`` section (paths already resolved)."""
    pre = dataset.get("preprocessing", {})
    qa = pre.get("qa_generation", {})
    qc = dataset.get("quality_control", {})
    fmt = pre.get("format", "alpaca")
    model = qa.get("model", "offline")
    base_url = qa.get("base_url")
    try:
        return CreateOptions(
            sources=tuple(sources),
            format="alpaca" if fmt == "auto" else fmt,
            chunk=ChunkSettings(pre.get("chunk_size", 384), pre.get("chunk_overlap", 48)),
            generation=GenerationSettings(
                backend=qa.get("backend") or pick_backend(model, base_url),
                model=model,
                questions_per_doc=qa.get("questions_per_doc"),
                questions_per_chunk=qa.get("questions_per_chunk"),
                base_url=base_url,
                api_key_env=qa.get("api_key_env"),
                max_retries=qa.get("max_retries", 4),
                requests_per_minute=qa.get("requests_per_minute", 0),
                concurrency=qa.get("concurrency", 4),
                batch_size=qa.get("batch_size", 8),
                with_context=qa.get("include_context", False),
            ),
            quality=QualitySettings(
                min_length=qc.get("minimum_length", 0),
                max_length=qc.get("maximum_length", 0),
                language=qc.get("language"),
                pii=qc.get("pii", "redact"),
                toxicity_filter=qc.get("toxicity_filter", False),
                toxicity_threshold=qc.get("toxicity_threshold", 0.1),
                toxicity_scorer=qc.get("toxicity_scorer"),
                min_quality_score=max(
                    qc.get("min_quality_score", 0.0),
                    dataset.get("validation", {}).get("quality_threshold", 0.0),
                ),
                factual_verification=qc.get("factual_verification", False),
                factual_consistency=qc.get("factual_consistency", 0.5),
                duplicate_detection=qc.get("duplicate_detection", True),
                near_duplicate_threshold=qc.get("near_duplicate_threshold", 0.85),
                gates=tuple(sorted(qc.get("gates", {}).items())),
                coverage_analysis=qc.get("coverage_analysis", True),
                question_check=qc.get("question_check", True),
                model_judge=qc.get("model_judge", False),
                min_judge_score=qc.get("min_judge_score", 0.0),
                coherence_scoring=qc.get("coherence_scoring", False),
                min_coherence_score=qc.get("min_coherence_score", 0.0),
                domain_relevance=qc.get("domain_relevance", False),
                min_domain_relevance=qc.get("min_domain_relevance", 0.0),
            ),
            split_ratio=dataset.get("validation", {}).get("split_ratio", 0.0),
            seed=seed,
            include_metadata=dataset.get("source", {}).get("include_metadata", False),
            keep_passages=bool(dataset.get("source", {}).get("keep_passages", False)),
            augmentation=bool(dataset.get("augmentation", False)),
            tokenizer=tokenizer,
        )
    except ValueError as exc:  # ChunkSettings range checks
        raise DatasetError(str(exc)) from None


def with_cache(options: CreateOptions, cache_dir: Path) -> CreateOptions:
    from dataclasses import replace

    return replace(options, generation=replace(options.generation, cache_dir=cache_dir))
