"""Inference: score any number of texts against any number of candidate labels.

``GliZNet.predict`` / ``GliZNet.score`` call these functions.

* Texts are tokenized once and batched, sorted by length (less padding); every distinct label is
  tokenized once.
* **Label vectors once** (``reuses_label_vectors``): with ``label_attention="isolated"`` and ``text_pooling``
  "mean" or "cls", a label's vector does not depend on the text and the text's vector not on the labels.  Each
  label is then encoded once, alone (``[CLS] [SEP] label [LAB] [SEP]``), and kept in the model's
  ``LabelVectorCache`` (keyed by the rendered label string, reused across batches and calls, bounded); each text
  is encoded once, alone (``[CLS] text [SEP]``: the positions and mask the text has in a full pass), and its
  scores are ``ScoreHead(similarity(text, labels))`` against every label at once.  The scores are those of
  the passes below (to float noise, ~1e-7), at the cost of one short pass per text whatever the label count.
* Otherwise - labels that read the text (``"full"``, ``"labels_read_text"``), a text read per label
  (``text_pooling="label"``), or ``cache=False`` - a label set longer than ``max_labels_per_pass`` is split
  into chunks; each chunk is a new pass that repeats the text.  Labels the tokenizer had to drop for lack of
  room (``max_length``) are carried to the next pass, so every label gets a score.  With
  ``label_attention="isolated"`` a label's score does not depend on which other labels share its pass, so
  chunking changes nothing; with ``"full"`` it can.
* A label's score is the model's ``ScoreHead`` probability ``sigmoid(similarity * exp(t) + b)``: independent
  per label (multi-label); for single-label tasks take the argmax.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from gliznet.errors import UserError
from gliznet.modeling.tokenizer import Assembled, check_labels, label_overhead, validate_example

LABEL_CACHE_SIZE = 65_536  # label vectors a model keeps (~100 MB at 384 dimensions in float32)
LABEL_BATCH = 128  # labels per pass when encoding label vectors


def _per_text_labels(texts, labels) -> tuple[bool, list[list[str]]]:
    """``(shared, one label list per text)``: ``labels`` is one list for every text or one list per text."""
    if isinstance(texts, str):
        raise UserError("texts is a string: pass a list of texts")
    shared = isinstance(labels, str) or labels is None or len(labels) == 0 or all(isinstance(x, str) for x in labels)
    if shared:
        check_labels(labels)
    per_text = [list(labels)] * len(texts) if shared else [list(x) for x in labels]
    if len(per_text) != len(texts):
        raise UserError(f"{len(texts)} texts but {len(per_text)} label lists: pass one shared list or one list per text")
    for i, (text, cand) in enumerate(zip(texts, per_text)):
        validate_example(text, cand, where=f"texts[{i}]")
    return shared, per_text


# -- label vectors, once -----------------------------------------------------------------------------------
def reuses_label_vectors(config) -> bool:
    """True when neither side of a pass sees the other: isolated attention and a text pooled without the labels."""
    return config.label_attention == "isolated" and config.text_pooling in ("mean", "cls")


def _weights_stamp(model) -> tuple:
    """Changes whenever the weights can have: an in-place update (optimizer step, ``load_state_dict``) bumps a
    tensor's version counter; a replaced parameter, another device or dtype, or pooling changes the rest."""
    params = list(model.parameters())
    return (hash(tuple(id(p) for p in params)), sum(p._version for p in params), params[0].device, params[0].dtype,
            model.config.label_attention, model.config.label_pooling)


class LabelVectorCache:
    """Rendered label string -> its label vector (as ``GliZNet.encode`` pools it next to an empty text), for one
    state of the model's weights: emptied when they change; least recently used labels leave past ``max_labels``."""

    def __init__(self, max_labels: int = LABEL_CACHE_SIZE):
        self.max_labels = max_labels
        self._stamp: tuple | None = None
        self._vectors: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._last: tuple[tuple, torch.Tensor] | None = None  # the last label list asked for, stacked
        self._pieces_of, self._pieces = None, {}  # the tokenizer, and label -> its token ids

    def __len__(self) -> int:
        return len(self._vectors)

    def pieces(self, tokenizer, labels: list[str]) -> dict[str, list[int]]:
        """Token ids of each label (tokenized once: the tokenizer does not change with the weights)."""
        if self._pieces_of is not tokenizer:
            self._pieces_of, self._pieces = tokenizer, {}
        new = [lab for lab in labels if lab not in self._pieces]
        self._pieces.update(zip(new, tokenizer.encode_pieces(new)))
        if len(self._pieces) > self.max_labels:
            self._pieces = {lab: self._pieces[lab] for lab in labels}
        return {lab: self._pieces[lab] for lab in labels}

    def vectors(self, model, labels: list[str], pieces: dict[str, list[int]] | None = None,
                batch_size: int = LABEL_BATCH) -> torch.Tensor:
        """(len(labels), D) on the model's device; labels not cached are encoded (``pieces``: their token ids)."""
        stamp = _weights_stamp(model)
        if stamp != self._stamp:
            self._stamp, self._last = stamp, None
            self._vectors.clear()
        key = tuple(labels)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        fresh = _encode_labels(model, [lab for lab in dict.fromkeys(labels) if lab not in self._vectors], pieces,
                               batch_size)
        for lab in labels:
            if lab in self._vectors:
                self._vectors.move_to_end(lab)
        self._vectors.update(fresh)
        stacked = torch.stack([fresh[lab] if lab in fresh else self._vectors[lab] for lab in labels])
        while len(self._vectors) > self.max_labels:
            self._vectors.popitem(last=False)
        self._last = (key, stacked)
        return stacked


def _encode_labels(model, labels: list[str], pieces: dict[str, list[int]] | None,
                   batch_size: int) -> dict[str, torch.Tensor]:
    """Each label alone, ``[CLS] [SEP] label [LAB] [SEP]``, shortest first: its pooled (and projected) vector."""
    if not labels:
        return {}
    tok, layout = model.tokenizer, model.config.layout()
    ids = pieces if pieces is not None else {}
    missing = [lab for lab in labels if lab not in ids]
    ids = {**ids, **dict(zip(missing, tok.encode_pieces(missing)))}
    ordered = sorted(labels, key=lambda lab: len(ids[lab]))
    out = {}
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start:start + batch_size]
        enc = tok.pad([tok.assemble([], [ids[lab]], **layout) for lab in chunk])
        enc = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask", "label_mask")}
        _, label_vecs, _ = model.encode(**enc)
        out.update(zip(chunk, label_vecs[:, 0]))
    return out


def _cache(model) -> LabelVectorCache:
    if getattr(model, "label_vector_cache", None) is None:
        model.label_vector_cache = LabelVectorCache()
    return model.label_vector_cache


def label_vectors(model, labels: list[str], batch_size: int = LABEL_BATCH) -> torch.Tensor:
    """(len(labels), D): the vector of each (rendered) label, from the model's cache (encoded on a miss)."""
    return _cache(model).vectors(model, list(labels), batch_size=batch_size)


def text_vectors(model, text_ids: list[list[int]]) -> torch.Tensor:
    """(len(text_ids), D): each text alone, ``[CLS] text [SEP]`` (already cut to its length in a pass)."""
    tok = model.tokenizer
    rows = [Assembled([tok.start_id, *ids, tok.end_id], [0] * (len(ids) + 2), [], []) for ids in text_ids]
    enc = tok.pad(rows)
    enc = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask", "label_mask")}
    text, _, _ = model.encode(**enc)
    return text


def _fixed_text_tokens(n_tokens: int, layout: dict) -> int | None:
    """The text's token count in every pass, when the labels beside it cannot change it (``assemble`` gives a
    text at least ``max(min_text_tokens, text_budget * max_length)`` tokens); None when they can."""
    floor = max(layout["min_text_tokens"], int(layout["text_budget"] * layout["max_length"]))
    cap = layout["max_text_tokens"] if layout["max_text_tokens"] is not None else n_tokens
    kept = min(n_tokens, cap)
    return kept if kept <= min(floor, layout["max_length"] - 3) else None


def _too_long(label: str, max_length: int) -> ValueError:
    return ValueError(f"label {label!r} does not fit in max_length={max_length} next to the text: shorten the label")


# -- scoring -------------------------------------------------------------------------------------------------
@torch.inference_mode()
def score_labels(model, texts: list[str], labels: list[str] | list[list[str]], batch_size: int = 32,
                 max_labels_per_pass: int = 32, cache: bool = True) -> np.ndarray | list[np.ndarray]:
    """(n_texts, n_labels) probabilities for a shared label list; a list of arrays for per-text lists.
    ``cache=False`` always scores in passes of ``max_labels_per_pass`` labels (the text repeated per pass)."""
    if max_labels_per_pass < 1 or batch_size < 1:
        raise UserError("batch_size and max_labels_per_pass must be >= 1")
    if len(texts) == 0:
        raise UserError("texts is empty: pass at least one text")
    shared, per_text = _per_text_labels(texts, labels)
    tok, cfg = model.tokenizer, model.config
    layout = cfg.layout()
    was_training = model.training
    model.eval()
    out = [np.zeros(len(c), dtype=np.float32) for c in per_text]
    text_ids = tok.encode_pieces(list(texts))
    unique = list(dict.fromkeys(lab for c in per_text for lab in c))
    once = cache and reuses_label_vectors(cfg)
    piece_of = _cache(model).pieces(tok, unique) if once else dict(zip(unique, tok.encode_pieces(unique)))
    fixed = [_fixed_text_tokens(len(t), layout) if once else None for t in text_ids]
    try:
        once = [i for i in range(len(texts)) if fixed[i] is not None]
        if once:
            _score_once(model, once, text_ids, fixed, per_text, shared, piece_of, batch_size, out)
        _score_in_passes(model, [i for i in range(len(texts)) if fixed[i] is None], text_ids, per_text, piece_of,
                         batch_size, max_labels_per_pass, out)
    finally:
        model.train(was_training)
    return np.stack(out) if shared else out


def _score_once(model, indices, text_ids, fixed, per_text, shared, piece_of, batch_size, out) -> None:
    """Every text once, every label once (cached): ``ScoreHead(similarity(text, labels))``."""
    max_length, extra = model.config.max_length, label_overhead(model.config.label_layout)
    longest: dict[int, int] = {}  # per label list (a shared list is one object): its longest label's tokens
    for i in indices:
        cand = per_text[i]
        if id(cand) not in longest:
            longest[id(cand)] = max(len(piece_of[lab]) if piece_of[lab] else max_length for lab in cand)
        room = max_length - (fixed[i] + 2) - 1
        if longest[id(cand)] + extra > room:
            raise _too_long(next(lab for lab in cand if not piece_of[lab] or len(piece_of[lab]) + extra > room),
                            max_length)
    cols = per_text[indices[0]] if shared else sorted({lab for i in indices for lab in per_text[i]})
    vecs = _cache(model).vectors(model, cols, piece_of)
    col_of = None if shared else {lab: j for j, lab in enumerate(cols)}
    order = sorted(indices, key=lambda i: fixed[i])
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        text = text_vectors(model, [text_ids[i][:fixed[i]] for i in batch])
        prob = model.score_head.probability(model.similarity(text, vecs)).float().cpu().numpy()
        for r, i in enumerate(batch):
            out[i][:] = prob[r] if shared else prob[r, [col_of[lab] for lab in per_text[i]]]


def _score_in_passes(model, indices, text_ids, per_text, piece_of, batch_size, max_labels_per_pass, out) -> None:
    """Per pass a text and up to ``max_labels_per_pass`` of its labels; the text repeats for every chunk."""
    tok, cfg = model.tokenizer, model.config
    layout = cfg.layout()
    order = sorted(indices, key=lambda i: len(text_ids[i]))
    device = model.device
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        pending = {i: list(range(len(per_text[i]))) for i in batch}
        while any(pending.values()):
            rows, owners = [], []
            for i in batch:
                if not pending[i]:
                    continue
                chunk = pending[i][:max_labels_per_pass]
                row = tok.assemble(text_ids[i], [piece_of[per_text[i][j]] for j in chunk], **layout)
                if not row.kept:
                    raise _too_long(per_text[i][chunk[0]], cfg.max_length)
                kept = [chunk[k] for k in row.kept]
                rows.append(row)
                owners.append((i, kept))
                done = set(kept)
                pending[i] = [j for j in pending[i] if j not in done]
            enc = tok.pad(rows)
            enc = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "label_mask")}
            prob = torch.sigmoid(model(**enc).score_logits).float().cpu().numpy()
            for r, (i, kept) in enumerate(owners):
                out[i][kept] = prob[r, :len(kept)]


def predict(model, texts: list[str], labels: list[str] | list[list[str]], threshold: float | None = None,
            batch_size: int = 32, max_labels_per_pass: int = 32) -> list[dict[str, float]]:
    """Per text, ``{label: probability}`` sorted by score; with ``threshold`` only labels scoring >= it."""
    scores = score_labels(model, texts, labels, batch_size=batch_size, max_labels_per_pass=max_labels_per_pass)
    _, per_text = _per_text_labels(texts, labels)
    results = []
    for cand, row in zip(per_text, scores):
        pairs = sorted(zip(cand, (float(s) for s in row)), key=lambda p: -p[1])
        results.append({lab: s for lab, s in pairs if threshold is None or s >= threshold})
    return results
