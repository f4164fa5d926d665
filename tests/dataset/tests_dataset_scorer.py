"""A toxicity scorer plugged in by name in the tests ("tests_dataset_scorer:always_toxic")."""


def always_toxic(text: str) -> float:
    return 1.0
