"""Peak training memory per GPU, estimated from the model's shape, the method and the run.

The numbers follow the usual accounting for transformer training: weights, gradients and
optimizer state for what trains, plus activations (Korthikanti et al., "Reducing Activation
Recomputation in Large Transformer Models", with memory-efficient attention so the s^2 term is
gone) and the logits of the loss. It is an estimate to choose settings with, not a promise:
`benchmarks/memory_estimate.py` compares it with measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
# Measured on an H200 (benchmarks/results/memory_estimate_gpu.json): allocations beyond the
# tensors themselves, mostly cuBLAS workspaces, about 0.3 GiB.
CUDA_WORKSPACE = 0.3 * GIB


@dataclass(frozen=True)
class ModelShape:
    parameters: float  # total, in parameters
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    source: str  # where the numbers came from, for `lfm explain`


# Known hub models (architecture numbers from their config.json).
KNOWN_MODELS: dict[str, ModelShape] = {
    "meta-llama/llama-2-7b-hf": ModelShape(6.74e9, 4096, 32, 11008, 32000, "known model"),
    "meta-llama/llama-2-13b-hf": ModelShape(13.0e9, 5120, 40, 13824, 32000, "known model"),
    "meta-llama/llama-2-70b-hf": ModelShape(69.0e9, 8192, 80, 28672, 32000, "known model"),
    "meta-llama/meta-llama-3-8b": ModelShape(8.03e9, 4096, 32, 14336, 128256, "known model"),
    "mistralai/mistral-7b-v0.1": ModelShape(7.24e9, 4096, 32, 14336, 32000, "known model"),
    "huggingfacetb/smollm2-135m-instruct": ModelShape(1.35e8, 576, 30, 1536, 49152, "known model"),
    "huggingfacetb/smollm2-360m-instruct": ModelShape(3.62e8, 960, 32, 2560, 49152, "known model"),
}


def shape_from_config(config: dict) -> ModelShape | None:
    """A decoder's shape from its config.json (Llama-style field names and common aliases)."""
    hidden = config.get("hidden_size") or config.get("n_embd") or config.get("d_model")
    layers = config.get("num_hidden_layers") or config.get("n_layer")
    vocab = config.get("vocab_size")
    if not (hidden and layers and vocab):
        return None
    intermediate = config.get("intermediate_size") or config.get("n_inner") or 4 * hidden
    heads = config.get("num_attention_heads") or config.get("n_head") or 1
    kv_heads = config.get("num_key_value_heads") or heads
    attention = hidden * hidden * 2 + 2 * hidden * (hidden * kv_heads // heads)
    gated = 3 if config.get("model_type") in ("llama", "mistral", "qwen2", "gemma", "gemma2") else 2
    per_layer = attention + gated * hidden * intermediate + 2 * hidden
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return ModelShape(
        float(layers * per_layer + embeddings), hidden, layers, intermediate, vocab, "config.json"
    )


def shape_from_size(billions: float) -> ModelShape:
    """A Llama-like shape for a model known only by its size (e.g. `...-7b`)."""
    hidden = 4096 if billions < 10 else 5120 if billions < 20 else 8192
    layers = max(1, round(billions * 1e9 / (12 * hidden * hidden)))
    return ModelShape(
        billions * 1e9, hidden, layers, int(hidden * 2.7), 32000, "size in the model's name"
    )


def find_shape(base_model: str, billions: float | None) -> ModelShape | None:
    """The shape of a known model id, else a Llama-like guess from the size in its name.

    A local model's config.json is deliberately not read: the estimate drives values written
    into the bundle, and a bundle must not change with what happens to exist where it compiles
    (`lfm compile --check` in CI, where the model is absent, would fail). shape_from_config
    reads a config.json for tools that estimate a local model directly.
    """
    known = KNOWN_MODELS.get(base_model.lower())
    if known:
        return known
    return shape_from_size(billions) if billions else None


@dataclass(frozen=True)
class Run:
    method: str  # lora | qlora | dora | full | adapters | prefix_tuning | prompt_tuning | hybrid...
    half_precision: bool  # bf16/fp16 on a GPU (False: fp32)
    micro_batch: int
    sequence: int
    gradient_checkpointing: bool
    optimizer: str
    lora_rank: int = 16
    lora_targets_per_layer: int = 2  # e.g. q_proj, v_proj
    world: int = 1  # data-parallel processes
    sharding: str = "none"  # none | ddp | deepspeed_zero1/2/3 | fsdp (the distributed strategy)
    offload_optimizer: bool = False
    offload_parameters: bool = False


@dataclass(frozen=True)
class Estimate:
    weights: float
    trainable_parameters: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    overhead: float  # CUDA/cuBLAS workspaces

    @property
    def total(self) -> float:
        return (
            self.weights
            + self.gradients
            + self.optimizer
            + self.activations
            + self.logits
            + self.overhead
        )

    @property
    def total_gib(self) -> float:
        return self.total / GIB


_OPTIMIZER_BYTES = {"adamw_8bit": 2, "paged_adamw_8bit": 2, "adafactor": 4, "sgd": 0}


def estimate(shape: ModelShape, run: Run) -> Estimate:
    half = 2 if run.half_precision else 4
    if run.method == "full":
        trainable = shape.parameters
        weights = shape.parameters * 4  # fp32 master weights under mixed precision
        if run.half_precision:
            weights += shape.parameters * 2  # autocast keeps half-precision copies of them
    else:
        trainable = _adapter_parameters(shape, run)
        base_bytes = 0.5 + 0.0625 if run.method == "qlora" else half  # NF4 + double-quant constants
        weights = shape.parameters * base_bytes + trainable * 4
    gradients = trainable * 4
    optimizer = trainable * _OPTIMIZER_BYTES.get(run.optimizer, 8)  # AdamW: two fp32 moments
    tokens = run.micro_batch * run.sequence
    per_layer = 34 * tokens * shape.hidden * half / 2  # the paper's 34·s·b·h bytes are for 16-bit
    if run.gradient_checkpointing:
        activations = shape.layers * tokens * shape.hidden * half + per_layer  # inputs + one layer
    else:
        activations = shape.layers * per_layer
    # fp32 logits and their gradient, at every position: an upper bound, since train.py
    # projects only the positions the loss reads (the response; the share depends on data).
    logits = tokens * shape.vocab * 4 * 2
    overhead = CUDA_WORKSPACE if run.half_precision else 0.0
    weights, gradients, optimizer = _sharded(run, weights, gradients, optimizer)
    return Estimate(weights, trainable, gradients, optimizer, activations, logits, overhead)


def _sharded(
    run: Run, weights: float, gradients: float, optimizer: float
) -> tuple[float, float, float]:
    """Per-GPU share under ZeRO stage 1/2/3 or FSDP (full sharding), and CPU offload."""
    stage = {"deepspeed_zero1": 1, "deepspeed_zero2": 2, "deepspeed_zero3": 3, "fsdp": 3}.get(
        run.sharding, 0
    )
    if stage >= 1:
        optimizer /= run.world
    if stage >= 2:
        gradients /= run.world
    if stage >= 3:
        weights /= run.world
    if run.offload_optimizer and stage:
        optimizer = 0.0
    if run.offload_parameters and stage >= 3:
        weights = 0.0
    return weights, gradients, optimizer


def _adapter_parameters(shape: ModelShape, run: Run) -> float:
    if run.method in ("prefix_tuning", "prompt_tuning"):
        return 20 * shape.hidden * (2 * shape.layers if run.method == "prefix_tuning" else 1)
    if run.method == "adapters":
        return shape.layers * (2 * shape.hidden + shape.intermediate)  # (IA)^3 scaling vectors
    lora = shape.layers * run.lora_targets_per_layer * run.lora_rank * 2 * shape.hidden
    return lora * (2 if run.method == "hybrid_lora_adapter" else 1)
