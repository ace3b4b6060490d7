"""Evaluation data: a labelled ``.jsonl`` or a dataset folder's ``test`` split, the honest protocol's dev/test
portions, label-stratified subsamples, and the eval folder (``$GLIZNET_EVAL_DIR``)."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliznet.errors import UserError
from gliznet._io import read_jsonl

DATA_HELP = ('pass a .jsonl of {"text": str, "labels": [str, ...]} rows, or a gliznet dataset folder '
             "(DIR with triplet/ or couplet/ saved by DatasetDict.save_to_disk, or one of those)")


@dataclass
class EvalData:
    """One evaluation set: texts, their gold labels and the candidate label set they are scored against."""

    name: str
    texts: list[str]
    gold: list[list[str]]
    candidate_labels: list[str]
    multi_label: bool
    portion: str | None = None  # "dev" / "test" of the hash split, None = every row

    def gold_matrix(self) -> np.ndarray:
        """0/1 matrix ``(n_texts, n_candidates)`` with 1 where the candidate is a gold label."""
        index = {label: j for j, label in enumerate(self.candidate_labels)}
        matrix = np.zeros((len(self.texts), len(self.candidate_labels)), dtype=np.int8)
        for i, labels in enumerate(self.gold):
            for label in labels:
                matrix[i, index[label]] = 1
        return matrix


PORTIONS = ("dev", "test")


DEV_FRACTION = 0.3  # share of every eval set's rows in the dev portion; the rest is test


def portion_of(set_name: str, text: str) -> str:
    """``"dev"`` or ``"test"``: the first 8 bytes of ``sha256(set_name + "\\n" + text)`` read as a fraction of
    2**64, below ``DEV_FRACTION`` -> dev.  Depends on nothing else (no seed, order, limit or machine), and
    duplicate texts of one set share a portion, so none leaks from dev into test."""
    digest = hashlib.sha256(f"{set_name}\n{text}".encode("utf-8")).digest()
    return "dev" if int.from_bytes(digest[:8], "big") / 2**64 < DEV_FRACTION else "test"


def check_portion(portion: str | None) -> str | None:
    if portion not in (None, *PORTIONS):
        raise UserError(f"--portion {portion!r} is not a portion: use dev (30 % of each set, for choosing a "
                        "recipe), test (the other 70 %, for reporting) or leave it out for every row")
    return portion


def load_eval_data(path: str, limit: int | None = None, seed: int = 0, portion: str | None = None) -> EvalData:
    """Load a ``.jsonl`` eval file or a gliznet dataset folder's ``test`` split.

    The candidate label set is computed on the whole file/split *before* ``portion`` and ``limit`` cut it, so
    dev, test and a quick run score the same label set as the full one.  ``portion`` keeps the rows
    ``portion_of`` assigns to it; ``limit`` then keeps a seeded, label-stratified subsample of those (see
    ``_stratified_subsample``).
    """
    check_portion(portion)
    p = labelled_path(path)
    name, texts, gold, candidates = read_labelled_jsonl(p) if p.is_file() else _read_dataset_dir(p)
    if not texts:
        raise UserError(f"--data {path!r} holds no rows: {DATA_HELP}")
    if portion is not None:
        keep = [i for i, text in enumerate(texts) if portion_of(name, text) == portion]
        if not keep:
            raise UserError(f"--data {path!r} has no row in the {portion} portion ({len(texts)} rows): "
                            "evaluate it without --portion")
        texts = [texts[i] for i in keep]
        gold = [gold[i] for i in keep]
    if limit is not None:
        if limit < 1:
            raise UserError(f"limit={limit} must be >= 1 (or None for the whole set)")
        keep = _stratified_subsample(gold, limit, seed)
        texts = [texts[i] for i in keep]
        gold = [gold[i] for i in keep]
    multi_label = any(len(labels) > 1 for labels in gold)
    return EvalData(name=name, texts=texts, gold=gold, candidate_labels=candidates, multi_label=multi_label,
                    portion=portion)


def labelled_path(path: str, option: str = "--data", help: str = DATA_HELP) -> Path:
    """``path`` when it is a ``.jsonl`` file or a folder (a dataset folder, checked when read); else one error
    naming ``option`` and ``help``."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{option} {path!r} does not exist: {help}")
    if p.is_file() and p.suffix != ".jsonl":
        raise UserError(f"{option} {path!r} is not a .jsonl file: {help}")
    return p


def read_labelled_jsonl(p: Path, option: str = "--data", help: str = DATA_HELP
                        ) -> tuple[str, list[str], list[list[str]], list[str]]:
    """``(set name, texts, gold labels, sorted candidate labels)`` of a ``{"text", "labels"}`` JSONL; a bad line is
    one error naming ``option`` and the line (``gliznet._io.read_jsonl``), a row of the wrong shape one naming
    ``help`` too."""
    texts: list[str] = []
    gold: list[list[str]] = []
    for number, row in read_jsonl(p, option):
        if (not isinstance(row, dict) or not isinstance(row.get("text"), str)
                or not isinstance(row.get("labels"), list)
                or not all(isinstance(x, str) for x in row["labels"])):
            raise UserError(f"{option} {p}:{number} lacks a string 'text' and a list 'labels': {help}")
        texts.append(row["text"])
        gold.append(list(dict.fromkeys(row["labels"])))
    candidates = sorted({label for labels in gold for label in labels})
    return p.stem, texts, gold, candidates


def dataset_config_dir(p: Path, option: str = "--data") -> tuple[Path, str]:
    """``(folder of the saved DatasetDict, set name)`` of a gliznet output folder (``triplet/`` preferred, so
    negatives join the candidates) or of one config dir."""
    if (p / "dataset_dict.json").exists():
        return p, (p.parent.name if p.name in ("triplet", "couplet") else p.name)
    for config in ("triplet", "couplet"):
        if (p / config / "dataset_dict.json").exists():
            return p / config, p.name
    raise UserError(f"{option} {str(p)!r} is a folder without a saved DatasetDict: {DATA_HELP}")


def _read_dataset_dir(p: Path) -> tuple[str, list[str], list[list[str]], list[str]]:
    """A gliznet output folder's ``test`` split (see ``dataset_config_dir``)."""
    from datasets import load_from_disk

    config_dir, name = dataset_config_dir(p)
    dataset = load_from_disk(str(config_dir))
    if "test" not in dataset:
        raise UserError(f"--data {str(p)!r} has no 'test' split (found {sorted(dataset)}): "
                        "evaluate on a dataset built with a zero-shot test split")
    test = dataset["test"]
    texts = list(test["text"])
    gold = [list(dict.fromkeys(labels)) for labels in test["labels"]]
    candidates = {label for labels in gold for label in labels}
    if "not_labels" in test.column_names:
        candidates |= {label for labels in test["not_labels"] for label in labels}
    return name, texts, gold, sorted(candidates)


def _stratified_subsample(gold: list[list[str]], limit: int, seed: int) -> list[int]:
    """Indices of a seeded subsample of ``limit`` rows, stratified by each row's first gold label.

    Rows are shuffled within their stratum; row r at position k of a stratum of size m gets the key
    (k + 0.5) / m and the ``limit`` smallest keys are kept, so every stratum contributes in proportion
    to its size.  Returned in file order.
    """
    if limit >= len(gold):
        return list(range(len(gold)))
    rng = random.Random(seed)
    strata: dict[str, list[int]] = {}
    for i, labels in enumerate(gold):
        strata.setdefault(labels[0] if labels else "", []).append(i)
    keyed: list[tuple[float, float, int]] = []
    for members in strata.values():
        rng.shuffle(members)
        keyed += [((k + 0.5) / len(members), rng.random(), i) for k, i in enumerate(members)]
    keyed.sort()
    return sorted(i for _, _, i in keyed[:limit])


def default_eval_paths() -> list[str]:
    """Every ``*.jsonl`` in ``$GLIZNET_EVAL_DIR`` (the real eval sets, e.g. ``../shared/eval``); unset or empty
    is an error that says how to set it (no folder is guessed)."""
    folder = os.environ.get("GLIZNET_EVAL_DIR", "").strip()
    fix = ("set GLIZNET_EVAL_DIR to a folder of {text, labels} .jsonl files, "
           "e.g. export GLIZNET_EVAL_DIR=../shared/eval, or pass --data FILE")
    if not folder:
        raise UserError(f"GLIZNET_EVAL_DIR is not set: {fix}")
    paths = sorted(str(p) for p in Path(folder).glob("*.jsonl")) if Path(folder).is_dir() else []
    if not paths:
        raise UserError(f"no *.jsonl eval sets in GLIZNET_EVAL_DIR={folder}: {fix}")
    return paths
