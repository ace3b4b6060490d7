"""Seed passages: real texts a seeded run (``--seed-texts``) rewrites into the drawn genre, length and level.

``--seed-texts`` names the source, one of:

    PATH.jsonl[:column]              one JSON object a line; the passage is ``column`` (default ``text``),
                                     its id the object's ``id`` if it has one, else ``<file>:<line>``
    PATH.txt                         one passage a non-empty line; id ``<file>:<line>``
    HF_DATASET[:split[:column]]      a Hugging Face dataset through ``datasets.load_dataset`` (split default
                                     ``train``, column default ``text``); id the row's ``id`` if the
                                     dataset has that column, else ``<name>/<split>:<row>``

Drawing.  One passage grounds each call (a batch, or a whole bundle).  Call ``i`` of a run with seed ``s``
takes position ``i mod N`` of a permutation of the ``N`` passages shuffled with ``random.Random(f"{s}:seeds:{p}")``,
``p = i // N`` (``SeedPool.pick``): deterministic, independent of timing, and no passage is used twice before
every passage was used once.  A run with more calls than passages starts a *second pass* over a fresh
shuffle; such calls carry ``seed_pass >= 1`` in their plan and are counted (``seeded_calls_reusing_a_passage``
in the manifest's counts, ``seed_texts`` in the manifest).

A source that cannot be used (missing file, no such column, no non-empty passage) is one ``UserError``
naming the fix.  Loaded sources are cached per process (``load_seed_texts``).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from gliznet.errors import UserError

LOCAL_SUFFIXES = (".jsonl", ".json", ".txt")
DEFAULT_COLUMN = "text"
DEFAULT_SPLIT = "train"


@dataclass(frozen=True)
class Passage:
    id: str
    text: str


@dataclass(frozen=True)
class SeedPool:
    """The passages of one ``--seed-texts`` source, in source order."""

    source: str
    passages: tuple[Passage, ...]

    def pick(self, seed: int, index: int) -> tuple[Passage, int]:
        """The passage of call ``index`` and its pass (0: first use; see the module docstring)."""
        n = len(self.passages)
        seed_pass, position = divmod(index, n)
        order = list(range(n))
        random.Random(f"{seed}:seeds:{seed_pass}").shuffle(order)
        return self.passages[order[position]], seed_pass


def _fail(spec: str, problem: str, fix: str) -> UserError:
    return UserError(f"--seed-texts {spec}: {problem}: {fix}")


def _local_parts(spec: str) -> tuple[Path, str] | None:
    """``(path, column)`` when ``spec`` names a local file (by its suffix), else None (a Hub dataset)."""
    for suffix in LOCAL_SUFFIXES:
        at = spec.find(suffix + ":")
        if spec.endswith(suffix):
            return Path(spec), DEFAULT_COLUMN
        if at > 0:
            return Path(spec[:at + len(suffix)]), spec[at + len(suffix) + 1:] or DEFAULT_COLUMN
    return None


def _from_rows(spec: str, rows: Iterable[tuple[str, object]], column: str, columns: set[str]) -> SeedPool:
    if column not in columns:
        raise _fail(spec, f"no column '{column}' (columns: {', '.join(sorted(columns)) or 'none'})",
                    "name the passage column, e.g. --seed-texts SOURCE:COLUMN for a file or NAME:SPLIT:COLUMN "
                    "for a Hub dataset")
    passages = []
    for pid, value in rows:
        if isinstance(value, str) and value.strip():
            passages.append(Passage(pid, " ".join(value.split())))
    if not passages:
        raise _fail(spec, f"column '{column}' holds no non-empty text", "point it at a column of passages")
    ids = Counter(p.id for p in passages)
    if len(ids) < len(passages):  # ids must tell passages apart in provenance: fall back to positions
        passages = [Passage(f"{p.id}#{i}", p.text) for i, p in enumerate(passages)]
    return SeedPool(spec, tuple(passages))


def _load_local(spec: str, path: Path, column: str) -> SeedPool:
    if not path.is_file():
        raise _fail(spec, f"no such file {path}", "pass an existing .jsonl/.txt file or a Hugging Face dataset "
                    "name (NAME[:split[:column]])")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".txt":
        return _from_rows(spec, ((f"{path.name}:{n}", line) for n, line in enumerate(lines, 1)), column,
                          {DEFAULT_COLUMN} if column == DEFAULT_COLUMN else set())
    rows, columns = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise _fail(spec, f"line {number} is not JSON", "give one JSON object a line") from None
        if not isinstance(row, dict):
            raise _fail(spec, f"line {number} is not a JSON object", "give one JSON object a line")
        columns |= set(row)
        rows.append((str(row["id"]) if "id" in row else f"{path.name}:{number}", row.get(column)))
    return _from_rows(spec, rows, column, columns)


def _load_hub(spec: str) -> SeedPool:
    name, _, rest = spec.partition(":")
    split, _, column = rest.partition(":")
    split, column = split or DEFAULT_SPLIT, column or DEFAULT_COLUMN
    import datasets

    try:
        data = datasets.load_dataset(name, split=split)
    except Exception as err:  # noqa: BLE001 - the Hub's many failures all mean "this source cannot be read"
        raise _fail(spec, f"could not load the dataset ({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''})",
                    "pass an existing .jsonl/.txt file, or a reachable Hub dataset NAME[:split[:column]]") from None
    columns = set(data.column_names)
    ids = data["id"] if "id" in columns and column in columns else None
    values = data[column] if column in columns else []
    rows = ((str(ids[i]) if ids is not None else f"{name}/{split}:{i}", v) for i, v in enumerate(values))
    return _from_rows(spec, rows, column, columns)


@lru_cache(maxsize=8)
def load_seed_texts(spec: str) -> SeedPool:
    """The passages of ``spec`` (module docstring); a source that cannot be used is one ``UserError``."""
    spec = spec.strip()
    if not spec:
        raise UserError("--seed-texts is empty: pass a .jsonl/.txt file or a Hub dataset NAME[:split[:column]]")
    local = _local_parts(spec)
    return _load_local(spec, *local) if local is not None else _load_hub(spec)


def seed_counts(specs: Iterable[dict]) -> Counter:
    """Counts over the plans (``CallSpec`` dicts) of a run's calls: calls grounded in a passage, distinct
    passages used, and calls that reused a passage after the pool was exhausted."""
    counts: Counter = Counter()
    used: set[str] = set()
    for spec in specs:
        if spec.get("seed_id") is None:
            continue
        counts["seeded_calls"] += 1
        used.add(spec["seed_id"])
        counts["seeded_calls_reusing_a_passage"] += int(spec.get("seed_pass", 0) > 0)
    if counts:
        counts["seed_passages_used"] = len(used)
    return counts


def seed_report(spec: str, counts: dict) -> dict:
    """The manifest's ``seed_texts`` section."""
    pool = load_seed_texts(spec)
    return {"source": spec, "passages_available": len(pool.passages),
            "calls_grounded": int(counts.get("seeded_calls", 0)),
            "passages_used": int(counts.get("seed_passages_used", 0)),
            "calls_reusing_a_passage": int(counts.get("seeded_calls_reusing_a_passage", 0)),
            "policy": "one passage per call, drawn without replacement from a seeded shuffle; once every passage "
                      "was used, a fresh shuffle starts a second pass (those calls are counted as reusing)"}
