"""XML0 label fusion: an unseen label borrows the evidence of the seen labels a text is predicted to have.

A model trained on the labels of its training data ("seen" labels) is usually better at recognising those
than at scoring a new label from its name alone.  Fusion (seed 004, after XML0) mixes an unseen candidate's
own score with how similar it is to the seen labels the text most likely carries:

    fused(t, u) = (1 - λ) · S(t, u) + λ · Σ_s p(s | t) · sim(s, u)          for every unseen candidate u
    p(· | t)    = softmax over the seen labels s of S(t, s) / τ             (only the top_k scores; the rest get 0)
    fused(t, s) = S(t, s)                                                   seen candidates keep their score

``S`` is the base scorer's score, ``sim(s, u)`` the cosine of the two labels' vectors *mapped to the score
range of S*, so both terms are on the same scale:

* ``EmbeddingBaseline``: S is already a cosine of unit vectors, so sim is the plain cosine of the backbone's
  label vectors;
* ``GliZNet``: S is ``sigmoid(cos · exp(t) + b)`` (its ``ScoreHead``), so sim is the same head applied to the
  cosine of the model's own label vectors - the score the model gives a text whose vector is label s's.

Read top to bottom: ``fuse`` (the formula, pure numpy), the label spaces that give a base scorer's label
vectors and seen-label scores (``EmbeddingSpace``, ``GliZNetSpace``, ``label_space``), ``FusionScorer`` (a
``gliznet.evaluation.runs.Scorer`` wrapping another one), and ``load_seen_labels`` / ``make_fusion_scorer`` (seen
labels from training data; what ``gliznet evaluate --fusion-seen`` calls).  Fusion is off unless asked for;
λ = 0 returns the base scores exactly.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from gliznet.errors import UserError
from gliznet.records import label_key

DEFAULT_LAMBDA = 0.3
DEFAULT_TAU = 0.05
DEFAULT_TOP_K = 10


# --------------------------------------------------------------------------------------------------
# The formula
# --------------------------------------------------------------------------------------------------

def check_fusion_params(lam: float, tau: float, top_k: int | None) -> None:
    if not 0.0 <= lam <= 1.0:
        raise UserError(f"--fusion-lambda={lam} must be in [0, 1]: 0 keeps the model's scores, 1 uses only the "
                        "seen labels' evidence")
    if not tau > 0:
        raise UserError(f"--fusion-tau={tau} must be > 0: the softmax temperature over the seen labels' scores")
    if top_k is not None and top_k < 1:
        raise UserError(f"--fusion-top-k={top_k} must be >= 1 (or left out for every seen label)")


def seen_label_probabilities(scores_seen: np.ndarray, tau: float, top_k: int | None = None) -> np.ndarray:
    """p(s | t): row-wise softmax of ``scores_seen / tau`` over each row's ``top_k`` highest scores (others 0)."""
    logits = np.asarray(scores_seen, dtype=np.float64) / tau
    if top_k is not None and top_k < logits.shape[1]:
        drop = np.argpartition(-logits, top_k - 1, axis=1)[:, top_k:]
        np.put_along_axis(logits, drop, -np.inf, axis=1)
    logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def fuse(scores_unseen: np.ndarray, scores_seen: np.ndarray, sim_seen_unseen: np.ndarray, lam: float,
         tau: float, top_k: int | None = None) -> np.ndarray:
    """``(1 - lam) · scores_unseen + lam · p(s|t) @ sim_seen_unseen``.

    ``scores_unseen`` (n_texts, n_unseen) and ``scores_seen`` (n_texts, n_seen) are the base scores;
    ``sim_seen_unseen`` (n_seen, n_unseen) the label similarities already in the score range.
    """
    scores_unseen = np.asarray(scores_unseen, dtype=np.float64)
    scores_seen = np.asarray(scores_seen, dtype=np.float64)
    sim = np.asarray(sim_seen_unseen, dtype=np.float64)
    check_fusion_params(lam, tau, top_k)
    n, u = scores_unseen.shape
    if scores_seen.ndim != 2 or scores_seen.shape[0] != n or scores_seen.shape[1] < 1:
        raise ValueError(f"scores_seen has shape {scores_seen.shape}: pass ({n}, n_seen >= 1), one row per text")
    if sim.shape != (scores_seen.shape[1], u):
        raise ValueError(f"sim_seen_unseen has shape {sim.shape}: pass (n_seen, n_unseen) = "
                         f"{(scores_seen.shape[1], u)}")
    if lam == 0.0:
        return scores_unseen
    prior = seen_label_probabilities(scores_seen, tau, top_k) @ sim
    return (1.0 - lam) * scores_unseen + lam * prior


# --------------------------------------------------------------------------------------------------
# Label spaces: a base scorer's label vectors, its similarity -> score map, its scores of the seen labels
# --------------------------------------------------------------------------------------------------

class LabelSpace(Protocol):
    def label_vectors(self, labels: list[str]) -> np.ndarray: ...  # (n, d) unit vectors

    def to_score(self, cosine: np.ndarray) -> np.ndarray: ...  # label-label cosine -> the base score range

    def seen_scores(self, texts: list[str], seen: list[str]) -> np.ndarray: ...  # (n_texts, n_seen) base scores


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


class EmbeddingSpace:
    """``EmbeddingBaseline``: its cached label vectors; its scores are cosines, so ``to_score`` is the identity."""

    def __init__(self, baseline):
        self.baseline = baseline

    def label_vectors(self, labels: list[str]) -> np.ndarray:
        return _unit(self.baseline.label_vectors(labels))

    def to_score(self, cosine: np.ndarray) -> np.ndarray:
        return cosine

    def seen_scores(self, texts: list[str], seen: list[str]) -> np.ndarray:
        return np.asarray(self.baseline.score(texts, seen), dtype=np.float64)


@contextmanager
def _inference(model):
    """Eval mode and no autograd for the block; the model's train/eval mode is restored after it."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


class GliZNetSpace:
    """``GliZNet``: label vectors from its own encoder, its ``ScoreHead`` as ``to_score``.

    Labels and texts are rendered as ``model.score`` renders them (``model.label_text``: templates, descriptions).
    A label's vector is ``gliznet.modeling.predict.label_vectors``: pooled from ``[CLS] [SEP] label [LAB] [SEP]``
    (an empty text, one label per row) and kept in the model's label-vector cache.  With
    ``label_attention="isolated"`` (the default) a label's vector never depends on the text, so this is the
    vector every pass computes.  Seen-label scores are ``model.score`` itself, which in that mode encodes each
    text once and compares it with the cached seen-label vectors (one pass per text instead of ``n_seen / 32``).
    """

    def __init__(self, model, batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size

    def _render(self, strings: list[str]) -> list[str]:
        """Labels as ``model.score`` shows them to the encoder (its ``label_text``, when the model has one)."""
        label_text = getattr(self.model, "label_text", None)
        return list(strings) if label_text is None else label_text.labels(list(strings))

    def _raw_vectors(self, labels: list[str]) -> np.ndarray:
        from gliznet.modeling.predict import label_vectors

        with _inference(self.model):
            vectors = label_vectors(self.model, self._render(labels), batch_size=self.batch_size)
            return vectors.float().cpu().numpy()

    def label_vectors(self, labels: list[str]) -> np.ndarray:
        return _unit(self._raw_vectors(labels))

    def to_score(self, cosine: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            sim = torch.as_tensor(cosine, dtype=torch.float32, device=self.model.device)
            return self.model.score_head.probability(sim).double().cpu().numpy()

    def seen_scores(self, texts: list[str], seen: list[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(seen)))
        return np.asarray(self.model.score(texts, seen, batch_size=self.batch_size), dtype=np.float64)


def label_space(scorer) -> LabelSpace:
    """The label space of a ``GliZNet`` or an ``EmbeddingBaseline`` (recognised by their attributes)."""
    if hasattr(scorer, "score_head") and hasattr(scorer, "encode") and hasattr(scorer, "tokenizer"):
        return GliZNetSpace(scorer)
    if hasattr(scorer, "embedder") and hasattr(scorer, "label_vectors"):
        return EmbeddingSpace(scorer)
    raise UserError(f"fusion needs the label vectors of its base scorer, and {type(scorer).__name__} has none: use "
                    "a GliZNet model or --baseline embedding, or pass FusionScorer(..., space=...) with "
                    "label_vectors / to_score / seen_scores")


# --------------------------------------------------------------------------------------------------
# The scorer
# --------------------------------------------------------------------------------------------------

class FusionScorer:
    """``score(texts, labels)`` of ``base_scorer`` with every unseen candidate fused (see the module docstring).

    ``seen_labels``: the labels of the training data (matched to candidates by ``gliznet.records.label_key``:
    case, ``_``/``-`` and whitespace do not matter).  ``space``
    defaults to ``label_space(base_scorer)``.
    """

    def __init__(self, base_scorer, seen_labels: list[str], lam: float = DEFAULT_LAMBDA, tau: float = DEFAULT_TAU,
                 top_k: int | None = DEFAULT_TOP_K, space: LabelSpace | None = None):
        from gliznet.evaluation.runs import scorer_name

        check_fusion_params(lam, tau, top_k)
        by_key = {label_key(label): label for label in seen_labels if isinstance(label, str) and label_key(label)}
        if not by_key:
            raise UserError("seen_labels is empty: pass the training data's labels (--fusion-seen DATASET_DIR)")
        self.base = base_scorer
        self.seen = sorted(by_key.values())
        self.seen_keys = set(by_key)
        self.lam, self.tau, self.top_k = lam, tau, top_k
        self.space = space or label_space(base_scorer)
        k = "all" if top_k is None else top_k
        self.name = f"{scorer_name(base_scorer)} + fusion (lam={lam:g}, tau={tau:g}, top_k={k}, {len(self.seen)} seen)"

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray:
        scores = np.asarray(self.base.score(texts, labels))
        unseen = [j for j, label in enumerate(labels) if label_key(label) not in self.seen_keys]
        if self.lam == 0.0 or not unseen or len(texts) == 0:
            return scores
        unseen_labels = [labels[j] for j in unseen]
        cosine = self.space.label_vectors(self.seen) @ self.space.label_vectors(unseen_labels).T
        fused = fuse(scores[:, unseen], self.space.seen_scores(texts, self.seen), self.space.to_score(cosine),
                     self.lam, self.tau, self.top_k)
        out = scores.astype(np.float64)
        out[:, unseen] = fused
        return out


# --------------------------------------------------------------------------------------------------
# Where seen labels come from
# --------------------------------------------------------------------------------------------------

SEEN_HELP = ("pass a dataset folder the model was trained on (its train split's labels), or a .jsonl of "
             '{"text", "labels"} training rows; several: comma-separated')


def _labels_of_jsonl(p: Path) -> set[str]:
    from gliznet.evaluation.data import read_labelled_jsonl

    return set(read_labelled_jsonl(p, "--fusion-seen", SEEN_HELP)[3])


def _labels_of_dataset(p: Path) -> set[str]:
    from datasets import load_from_disk

    from gliznet.evaluation.data import dataset_config_dir

    config_dir, _ = dataset_config_dir(p, option="--fusion-seen")
    dataset = load_from_disk(str(config_dir))
    if "train" not in dataset:
        raise UserError(f"--fusion-seen {str(p)!r} has no 'train' split (found {sorted(dataset)}): {SEEN_HELP}")
    return {label for labels in dataset["train"]["labels"] for label in labels}


def load_seen_labels(paths: str) -> list[str]:
    """The positive labels of the training data: a dataset folder's ``train`` split, or every label of a
    ``.jsonl``; ``paths`` may list several, comma-separated.  The real eval sets are refused (they are for
    measuring only, and their labels are the candidates being scored)."""
    from gliznet.evaluation.data import default_eval_paths, labelled_path

    try:
        eval_files = {str(Path(x).resolve()) for x in default_eval_paths()}
    except ValueError:
        eval_files = set()
    labels: set[str] = set()
    for part in [x.strip() for x in paths.split(",") if x.strip()]:
        p = labelled_path(part, "--fusion-seen", SEEN_HELP)
        if str(p.resolve()) in eval_files:
            raise UserError(f"--fusion-seen {part!r} is an eval set: {SEEN_HELP}")
        labels |= _labels_of_jsonl(p) if p.is_file() else _labels_of_dataset(p)
    if not labels:
        raise UserError(f"--fusion-seen {paths!r} names no labels: {SEEN_HELP}")
    return sorted(labels)


def make_fusion_scorer(base_scorer, seen: str, lam: float = DEFAULT_LAMBDA, tau: float = DEFAULT_TAU,
                       top_k: int | None = DEFAULT_TOP_K) -> FusionScorer:
    """``FusionScorer`` over the labels ``load_seen_labels(seen)`` finds (what ``--fusion-seen`` builds)."""
    check_fusion_params(lam, tau, top_k)
    return FusionScorer(base_scorer, load_seen_labels(seen), lam=lam, tau=tau, top_k=top_k)
