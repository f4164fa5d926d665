"""`lfm serve`: an OpenAI-compatible server for one base model and many hot-swappable LoRA
adapters, on transformers + peft (CPU or GPU).

- :mod:`.engine` batches requests across adapters on one thread that owns the model.
- :mod:`.adapters` keeps public names, versions and the drain of a replaced adapter.
- :mod:`.server` assembles a server from model references and follows registry environments.
- :mod:`.app` is the HTTP side (Starlette): OpenAI's routes, vLLM's adapter routes, metrics.
- :mod:`.auth` API keys and roles; :mod:`.protocol` request checks and answer shapes.
- :mod:`.rollout` (routing, per-variant windows), :mod:`.rollout_driver` (the registry's
  rollouts acted on), :mod:`.guardrails` and :mod:`.abreport` (pure): canary, A/B, blue-green.
"""
