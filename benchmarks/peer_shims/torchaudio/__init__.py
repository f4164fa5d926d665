"""Stand-in for torchaudio in the LLaMA-Factory benchmark arm only (text training never uses it).

LLaMA-Factory 0.9.5 imports torchaudio unconditionally (for audio inputs); the PyPI torchaudio
build does not load against the torch build pinned here. train_throughput.py puts this folder
on the peer's PYTHONPATH, so text fine-tuning runs; any real audio call would fail loudly.
"""


def __getattr__(name: str) -> object:
    raise ImportError(f"torchaudio.{name} is not available in this benchmark environment")
