"""Deduplication: exact merges, then negation-safe near-duplicate removal.

Two steps, each ``records -> (kept, accounted)``:

1. ``merge_exact`` - records with the same ``text_key`` (casefolded, whitespace-collapsed text) become
   one record: labels are the union, ``not_labels`` the union minus anything that is a label; the first
   record's provenance and position are kept.
2. ``near_duplicates`` / ``deduplicate`` - a later record whose text is a near copy of an earlier kept
   one (typos, swapped words) is rejected as ``near_duplicate``; the detail names the kept record.

Near-duplicate rule for texts ``a``, ``b`` (keys ``text_key``):

    score(a, b) = max(fuzz.ratio(a, b), fuzz.ratio(sorted_tokens(a), sorted_tokens(b)))
    near-duplicate  <=>  score >= threshold  AND  negation_cues(a) == negation_cues(b)   (as multisets)

Negation safety: ``fuzz.token_set_ratio("the movie was good", "the movie was not good") == 100`` and
even the token-sort score of that pair is 90, so a fuzzy score alone would merge opposite meanings.
``negation_cues`` counts not / no / never / n't / cannot / without / nor / none / nothing / nobody /
neither / nowhere (and common apostrophe-less forms such as "dont"); texts whose cue multisets differ
are never compared.

Scale: memory is never O(n^2).  Candidates come from *blocking by rare-token prefixes*: every text
is indexed under its ``m = max(4, ceil(0.3 * len(tokens)))`` rarest word tokens (document frequency over
the whole input), together with its negation cues; only texts that share an index entry are scored.
A typo or edit changes at most a few tokens and a word swap changes none; two texts that differ in
fewer than ``m`` distinct tokens always share an entry (the rarest surviving token of the original
is in both prefixes), so typical near copies are never missed, while unrelated texts rarely meet.
Small blocks are scored pair by pair; large ones (common rare tokens) are sorted by length and scored
in chunks with ``rapidfuzz.process.cdist`` only against texts that can reach the threshold by length:
for the Indel ratio ``2*M/(la+lb)`` with ``la <= lb`` the score is at most ``2*la/(la+lb)``, so
``score >= t`` needs ``la >= lb * t/(2-t)`` (t = threshold/100).  A chunk holds at most
``CHUNK x MAX_WINDOW`` scores; only pairs above the threshold are kept.

Growth.  With a vocabulary that stops growing, a "rare" token's block grows with the input, so the pairs
scored grow as n^2 / vocabulary (measured, bench/README.md "Scale": 10 pairs a text at 10k texts, 106 at 100k,
1,054 at 1M).  A block of more than ``MAX_BLOCK`` texts is therefore cut by a second prefix token: its texts
are compared only with those that share another prefix token with them.  Two texts that differ in fewer
than ``m - 1`` distinct tokens share their two rarest common tokens in both prefixes, so they still always
meet; only a pair whose one common prefix token is a token of such a large block (it differs in ``m - 1``
tokens or more) is no longer scored.  Blocks up to ``MAX_BLOCK`` are scored exactly as before, and the work
per text stays bounded.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from rapidfuzz import fuzz, process

from gliznet.errors import UserError
from gliznet.records import Record, Rejection, RejectReason, label_key, text_key

NEAR_DUP_THRESHOLD = 90.0  # the default score from which a text is a near-duplicate (generate, import)

CHUNK = 512            # query texts scored per cdist call (chunk x window floats in memory)
MAX_WINDOW = 4096      # candidate columns per cdist call; wider windows are cut into pieces
PREFIX_MIN = 4         # blocking: each text is indexed under at least its 4 rarest tokens ...
PREFIX_SHARE = 0.3     # ... or its rarest 30% of tokens, whichever is more
SMALL_BLOCK = 8        # blocks up to this size are scored pair by pair, larger ones with cdist
PARALLEL_BLOCK = 2000  # blocks from this size are scored with all cores
MAX_BLOCK = 16         # a block with more texts is cut by each text's other prefix tokens (see "Growth")


@dataclass
class DedupResult:
    """Kept records, rejections for near-duplicates, and counts ``exact_merged`` / ``near_duplicates``."""

    records: list[Record]
    rejections: list[Rejection]
    counts: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ exact


def _union(first: list[str], more: list[str], exclude: set[str]) -> list[str]:
    """``first`` then the items of ``more`` whose ``label_key`` is new and not in ``exclude``."""
    seen = set(exclude)
    out = []
    for label in [*first, *more]:
        key = label_key(label)
        if key not in seen:
            seen.add(key)
            out.append(label)
    return out


def merge_exact(records: list[Record]) -> tuple[list[Record], int]:
    """Merge records with equal ``text_key``; returns ``(records, number_merged_away)``.

    The merged record sits where the first one was, keeps its text and provenance;
    labels = union; not_labels = union minus the labels (compared by ``label_key``).
    """
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(record.key, []).append(record)
    out: list[Record] = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        labels: list[str] = []
        negatives: list[str] = []
        for record in group:
            labels = _union(labels, record.labels, set())
            negatives = _union(negatives, record.not_labels, set())
        positive_keys = {label_key(x) for x in labels}
        negatives = [x for x in negatives if label_key(x) not in positive_keys]
        out.append(group[0].model_copy(update={"labels": labels, "not_labels": negatives}))
    return out, len(records) - len(out)


# ------------------------------------------------------------------------------------------- near

_TOKEN = re.compile(r"\w+")
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_NEGATION_WORDS = {
    "not": "not", "no": "no", "never": "never", "without": "without", "nor": "nor", "none": "none",
    "nothing": "nothing", "nobody": "nobody", "neither": "neither", "nowhere": "nowhere",
    "cannot": "not",
}
_APOSTROPHE_LESS = {"dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "couldnt",
                    "wouldnt", "shouldnt", "wont", "havent", "hasnt", "hadnt", "aint", "mustnt",
                    "neednt", "mightnt"}


def negation_cues(text: str) -> tuple[tuple[str, int], ...]:
    """Multiset of negation cues in ``text`` as a sorted tuple; ``n't`` / ``cannot`` / ``dont`` count as "not"."""
    cues: Counter = Counter()
    for word in _WORD.findall(text.casefold()):
        word = word.replace("\u2019", "'")
        if word in _NEGATION_WORDS:
            cues[_NEGATION_WORDS[word]] += 1
        elif word.endswith("n't") or word in _APOSTROPHE_LESS:
            cues["not"] += 1
    return tuple(sorted(cues.items()))


def _sorted_tokens(key: str) -> str:
    return " ".join(sorted(key.split(" ")))


def _score_pairs(keys: list[str], sorted_keys: list[str], cutoff: float, workers: int):
    """Yield ``(i, j, score)`` for i > j (positions in ``keys``, sorted by length) with score >= cutoff."""
    n = len(keys)
    lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=n)
    ratio_floor = cutoff / 100.0
    min_fraction = ratio_floor / (2.0 - ratio_floor)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        lowest = int(np.searchsorted(lengths, min_fraction * lengths[start], side="left"))
        for col_start in range(lowest, stop, MAX_WINDOW):
            col_stop = min(stop, col_start + MAX_WINDOW)
            rows, cols = keys[start:stop], keys[col_start:col_stop]
            best = process.cdist(rows, cols, scorer=fuzz.ratio, score_cutoff=cutoff,
                                 dtype=np.float32, workers=workers)
            by_tokens = process.cdist(sorted_keys[start:stop], sorted_keys[col_start:col_stop],
                                      scorer=fuzz.ratio, score_cutoff=cutoff, dtype=np.float32,
                                      workers=workers)
            np.maximum(best, by_tokens, out=best)
            r, c = np.nonzero(best)
            i, j = r + start, c + col_start
            keep = j < i
            for a, b, s in zip(i[keep], j[keep], best[r[keep], c[keep]]):
                yield int(a), int(b), float(s)


def _prefix_tokens(tokens: set[str], df: Counter) -> list[str]:
    """The ``max(PREFIX_MIN, ceil(PREFIX_SHARE * len(tokens)))`` rarest tokens (by df, then spelling)."""
    m = max(PREFIX_MIN, math.ceil(PREFIX_SHARE * len(tokens)))
    return sorted(tokens, key=lambda tok: (df[tok], tok))[:m]


def _tokens(key: str) -> set[str]:
    return set(_TOKEN.findall(key)) or {key}


def _candidate_blocks(keys: list[str]) -> Iterator[list[int]]:
    """Blocks of indices to compare: texts sharing a prefix token and the same negation cues; a block of more
    than ``MAX_BLOCK`` texts is cut by a second prefix token (module docstring, "Growth").  Two passes over
    ``keys`` (document frequencies, then prefixes): the token sets of all texts are never held at once."""
    df: Counter = Counter()
    for key in keys:
        df.update(_tokens(key))
    blocks: dict[tuple, list[int]] = {}
    prefixes: list[tuple[str, ...]] = []
    for index, key in enumerate(keys):
        cues = negation_cues(key)
        prefix = tuple(sys.intern(tok) for tok in _prefix_tokens(_tokens(key), df))
        prefixes.append(prefix)
        for tok in prefix:
            blocks.setdefault((cues, tok), []).append(index)
    del df
    for (_, tok), members in blocks.items():
        if len(members) <= MAX_BLOCK:
            if len(members) > 1:
                yield members
            continue
        by_second: dict[str, list[int]] = {}
        for index in members:
            for other in prefixes[index]:
                if other != tok:
                    by_second.setdefault(other, []).append(index)
        yield from (sub for sub in by_second.values() if len(sub) > 1)


def _block_pairs(members: list[int], keys: list[str], cutoff: float, workers: int):
    """Yield ``(i, j, score)`` (indices into ``keys``) for pairs in one block scoring >= cutoff."""
    if len(members) <= SMALL_BLOCK:
        sorted_keys = {i: _sorted_tokens(keys[i]) for i in members}
        for x in range(len(members)):
            for y in range(x):
                a, b = members[x], members[y]
                score = max(fuzz.ratio(keys[a], keys[b], score_cutoff=cutoff),
                            fuzz.ratio(sorted_keys[a], sorted_keys[b], score_cutoff=cutoff))
                if score >= cutoff:
                    yield a, b, score
        return
    members = sorted(members, key=lambda idx: (len(keys[idx]), idx))
    block_keys = [keys[idx] for idx in members]
    workers = workers if len(members) >= PARALLEL_BLOCK else 1   # threads only pay off on big blocks
    for a, b, score in _score_pairs(block_keys, [_sorted_tokens(k) for k in block_keys], cutoff, workers):
        yield members[a], members[b], score


def near_duplicates(texts: list[str], threshold: float = NEAR_DUP_THRESHOLD,
                    workers: int = -1) -> list[tuple[int, int, float]]:
    """Pairs ``(kept_index, dup_index, score)`` over ``texts`` (indices into ``texts``).

    Greedy in input order: a text is a duplicate when it is a near copy of an earlier text that was
    itself kept; it is paired with the best-scoring such text.  Exact copies (same ``text_key``) score
    100 here too - run ``merge_exact`` first to union their labels instead.
    """
    if not 0.0 < threshold <= 100.0:
        raise UserError(f"threshold={threshold} is out of range: pass a score in (0, 100], e.g. 90")
    keys = [text_key(t) for t in texts]
    scores: dict[tuple[int, int], float] = {}          # (early, late) -> score
    for members in _candidate_blocks(keys):
        for x, y, score in _block_pairs(members, keys, threshold, workers):
            scores[(x, y) if x < y else (y, x)] = score

    neighbours: dict[int, list[tuple[int, float]]] = {}   # late index -> [(early index, score)]
    for (early, late), score in scores.items():
        neighbours.setdefault(late, []).append((early, score))
    pairs: list[tuple[int, int, float]] = []
    duplicate: set[int] = set()
    for late in sorted(neighbours):
        kept = [(score, -early, early) for early, score in neighbours[late] if early not in duplicate]
        if kept:
            score, _, early = max(kept)
            duplicate.add(late)
            pairs.append((early, late, score))
    return pairs


def deduplicate(records: list[Record], threshold: float = NEAR_DUP_THRESHOLD) -> DedupResult:
    """``merge_exact`` then drop near-duplicates (each one a ``near_duplicate`` rejection)."""
    merged, exact_merged = merge_exact(records)
    pairs = near_duplicates([r.text for r in merged], threshold)
    dropped = {dup: (kept, score) for kept, dup, score in pairs}
    kept_records: list[Record] = []
    rejections: list[Rejection] = []
    for index, record in enumerate(merged):
        if index not in dropped:
            kept_records.append(record)
            continue
        kept, score = dropped[index]
        original = merged[kept].text
        rejections.append(Rejection(
            reason=RejectReason.near_duplicate,
            detail=f"score {score:.1f} against kept record "
                   f"{original[:80]!r}{'...' if len(original) > 80 else ''}",
            raw=record.model_dump_json(),
            provenance=record.provenance,
        ))
    return DedupResult(records=kept_records, rejections=rejections,
                       counts={"exact_merged": exact_merged, "near_duplicates": len(pairs)})
