"""Exact and near-duplicate removal with MinHash LSH (datasketch), one record at a time.

Exact duplicates are found by a hash of the normalized text; near duplicates by MinHash
signatures of word trigrams in an LSH index at the configured Jaccard threshold. Signatures are
computed where records are assessed (in worker processes); only the index lives here. The LSH
bands favour recall (few missed near copies) and each candidate is then confirmed by its
estimated Jaccard similarity, so recall does not cost false removals. Records of one group (an
example and its augmentations) never remove each other.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any

NUM_PERM = 64
SCHEME = "affine32"  # named, so signatures made in workers are read back the same way
_WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}


@lru_cache(maxsize=1)
def _permutations() -> Any:
    """The hash permutations, computed once: building them dominates a MinHash's cost."""
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME).permutations


def _minhash(hashvalues: Any = None) -> Any:
    from datasketch import MinHash

    return MinHash(
        num_perm=NUM_PERM,
        seed=1,
        scheme=SCHEME,
        permutations=_permutations(),
        hashvalues=hashvalues,
    )


def signature(text: str) -> Any:
    """MinHash values of ``text`` (a numpy array, cheap to send between processes)."""
    minhash = _minhash()
    minhash.update_batch(list(shingles(text)))
    return minhash.hashvalues


class Deduplicator:
    def __init__(self, threshold: float) -> None:
        from datasketch import MinHashLSH

        # weights (false positive, false negative): lean to recall; candidates are confirmed below.
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=(0.2, 0.8))
        self.exact: set[bytes] = set()
        self.groups: dict[str, str] = {}  # LSH key -> group
        self.values: dict[str, Any] = {}  # LSH key -> MinHash values (32-bit: 256 bytes each)
        self.threshold = threshold

    def check(self, text: str, group: str, values: Any) -> str | None:
        """``exact_duplicate``/``near_duplicate`` if seen before, else remember it and None."""
        digest = hashlib.blake2b(normalize(text).encode(), digest_size=16).digest()
        if digest in self.exact:
            return "exact_duplicate"
        minhash = _minhash(values)
        for key in self.lsh.query(minhash):
            if self.groups[key] != group and self._similar(values, self.values[key]):
                return "near_duplicate"
        key = str(len(self.groups))
        self.lsh.insert(key, minhash)
        self.groups[key] = group
        self.values[key] = values.astype("uint32")  # affine32 values fit: half the memory
        self.exact.add(digest)
        return None

    def _similar(self, a: Any, b: Any) -> bool:
        """Estimated Jaccard similarity (share of equal MinHash values) at the threshold."""
        return float((a == b).mean()) >= self.threshold
