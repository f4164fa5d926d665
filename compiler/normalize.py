"""Pass 2, normalize: bring the seed's three config shapes into the one `model_config` shape.

- `{"model_config": {...}}` is the canonical shape and passes through unchanged.
- `{"fine_tuning": {...}}` (the seed's Phase 2 example) holds base_model, dataset and evaluation
  inside the fine-tuning block.
- `{"training_job": {...}}` (Phase 3) holds method, distributed, dataset and monitoring.

Keys the normalizer does not know are moved along unchanged, so validation still reports them
(at their original line). Every move is re-keyed in the source map, and each shape change is
reported as a note, which `lfm explain` shows.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from .diagnostics import CompileError, Diagnostic, JsonPath
from .load import LoadedConfig, SourceMap

SEED_BASE_MODEL = "meta-llama/Llama-2-7b-hf"
_HOLDOUT = re.compile(r"^holdout_(\d{1,2})_percent$")


@dataclass(frozen=True)
class Normalized:
    data: dict[str, Any]  # always {"model_config": {...}} (plus "$schema" when given)
    source: SourceMap
    shape: str  # "model_config" | "fine_tuning" | "training_job"
    notes: tuple[Diagnostic, ...]


SHAPES = ("model_config", "fine_tuning", "training_job")


def normalize(config: LoadedConfig) -> Normalized:
    data = copy.deepcopy(config.data)
    present = [key for key in SHAPES if key in data]
    if len(present) > 1:
        # Merging two shapes would silently pick one block's values over the other's.
        raise CompileError(
            [
                Diagnostic(
                    "error",
                    f"the config has both `{present[0]}` and `{key}`: write one job per file",
                    (key,),
                    config.source.keys.get((key,)),
                    f"move the settings into `{present[0]}`",
                )
                for key in present[1:]
            ]
        )
    shape = _shape_of(data)
    if shape == "fine_tuning":
        return _Mover(config, data, shape).phase2()
    if shape == "training_job":
        return _Mover(config, data, shape).phase3()
    return Normalized(data, config.source, "model_config", ())


def _shape_of(data: dict[str, Any]) -> str:
    if "model_config" in data:
        return "model_config"
    for legacy in ("fine_tuning", "training_job"):
        if isinstance(data.get(legacy), dict):
            return legacy
    return "model_config"  # validation reports what is missing or unknown


class _Mover:
    """Builds the model_config from a legacy block, re-keying source positions as it moves."""

    def __init__(self, config: LoadedConfig, data: dict[str, Any], shape: str):
        self.old = config.source
        self.new = SourceMap(config.source.file)
        self.block: dict[str, Any] = data.pop(shape)
        self.shape = shape
        self.out: dict[str, Any] = {k: v for k, v in data.items()}  # other top-level keys stay
        self.model: dict[str, Any] = {}
        self.out["model_config"] = self.model
        self.notes: list[Diagnostic] = []
        self._carry_top_level(data)

    def phase2(self) -> Normalized:
        block = self.block
        self.move(("base_model",), ("base_model",))
        self.move(("method",), ("fine_tuning", "method"))
        self.move(("parameters",), ("fine_tuning", "parameters"))
        self.move(("training",), ("fine_tuning", "training"))
        dataset = block.pop("dataset", None)
        if isinstance(dataset, dict):
            self._phase2_dataset(dataset)
        elif dataset is not None:
            self.put(("dataset",), dataset, ("dataset",))
        evaluation = block.pop("evaluation", None)
        if isinstance(evaluation, dict):
            self._phase2_evaluation(evaluation)
        elif evaluation is not None:
            self.put(("evaluation",), evaluation, ("evaluation",))
        self._move_rest()
        return self.finish()

    def phase3(self) -> Normalized:
        self.move(("method",), ("fine_tuning", "method"))
        self.move(("parameters",), ("fine_tuning", "parameters"))
        self.move(("training",), ("fine_tuning", "training"))
        self._move_rest()  # base_model, distributed, dataset, monitoring, ... keep their names
        return self.finish()

    def _phase2_dataset(self, dataset: dict[str, Any]) -> None:
        source = dataset.pop("source", None)
        if isinstance(source, str):
            self.put(("dataset", "source", "type"), source, ("dataset", "source"))
        elif source is not None:
            self.put(("dataset", "source"), source, ("dataset", "source"))
        fmt = dataset.pop("format", None)
        if fmt == "auto_generate_qa":
            self.put(
                ("dataset", "preprocessing", "qa_generation", "enabled"),
                True,
                ("dataset", "format"),
            )
        elif fmt is not None:
            self.put(("dataset", "preprocessing", "format"), fmt, ("dataset", "format"))
        for key in list(dataset):
            self.put(("dataset", key), dataset.pop(key), ("dataset", key))

    def _phase2_evaluation(self, evaluation: dict[str, Any]) -> None:
        test_set = evaluation.pop("test_set", None)
        if test_set is not None:
            match = _HOLDOUT.match(str(test_set))
            if match:
                ratio = int(match.group(1)) / 100
                self.put(
                    ("dataset", "validation", "split_ratio"), ratio, ("evaluation", "test_set")
                )
            else:
                self.put(("evaluation", "test_set"), test_set, ("evaluation", "test_set"))
        for key in list(evaluation):
            self.put(("evaluation", key), evaluation.pop(key), ("evaluation", key))

    def _move_rest(self) -> None:
        for key in list(self.block):
            self.move((key,), (key,))

    def _carry_top_level(self, data: dict[str, Any]) -> None:
        for key in data:
            self._copy_positions((key,), (key,), absolute=True)

    def move(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        if old[0] in self.block:
            self.put(new, self.block.pop(old[0]), old)

    def put(self, new: tuple[str, ...], value: Any, old: JsonPath) -> None:
        target = self.model
        for part in new[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                return  # a conflicting non-mapping value: validation reports it
        last = new[-1]
        if isinstance(target.get(last), dict) and isinstance(value, dict):
            target[last].update(value)
        else:
            target[last] = value
        self._copy_positions(old, new)

    def _copy_positions(self, old: JsonPath, new: JsonPath, *, absolute: bool = False) -> None:
        old_full = old if absolute else (self.shape, *old)
        new_full = new if absolute else ("model_config", *new)
        for table_old, table_new in (
            (self.old.keys, self.new.keys),
            (self.old.values, self.new.values),
        ):
            for path, loc in table_old.items():
                if path[: len(old_full)] == old_full:
                    table_new[new_full + path[len(old_full) :]] = loc
        # Intermediate mappings that did not exist in the file point at the legacy block.
        block_loc = self.old.keys.get((self.shape,))
        for end in range(1, len(new_full)):
            if block_loc:
                self.new.keys.setdefault(new_full[:end], block_loc)

    def finish(self) -> Normalized:
        where = self.old.keys.get((self.shape,))
        self.new.keys.setdefault(("model_config",), where) if where else None
        self.notes.append(
            Diagnostic(
                "note",
                f"the `{self.shape}` shape was normalized into `model_config`",
                (self.shape,),
                where,
            )
        )
        if "base_model" not in self.model:
            self.model["base_model"] = SEED_BASE_MODEL
            self.notes.append(
                Diagnostic(
                    "warning",
                    f"the `{self.shape}` block names no base_model; using {SEED_BASE_MODEL}, "
                    "the seed's base model",
                    ("model_config", "base_model"),
                    where,
                    "set model_config.base_model",
                )
            )
        return Normalized(self.out, self.new, self.shape, tuple(self.notes))
