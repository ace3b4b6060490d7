"""Inference: score any number of texts against any number of candidate labels.

``GliZNet.predict`` / ``GliZNet.score`` call these functions.

* Texts are tokenized once and batched, sorted by length (less padding); every distinct label is
  tokenized once.
* A label set longer than ``max_labels_per_pass`` is split into chunks; each chunk is a new pass that
  repeats the text.  Labels the tokenizer had to drop for lack of room (``max_length``) are carried to the
  next pass, so every label gets a score.  With ``label_attention="isolated"`` a label's score does not
  depend on which other labels share its pass, so chunking changes nothing; with ``"full"`` it can.
* A label's score is the model's ``ScoreHead`` probability ``sigmoid(similarity * exp(t) + b)``: independent
  per label (multi-label); for single-label tasks take the argmax.
"""

from __future__ import annotations

import numpy as np
import torch

from gliznet.modeling.tokenizer import check_labels, validate_example


def _per_text_labels(texts, labels) -> tuple[bool, list[list[str]]]:
    """``(shared, one label list per text)``: ``labels`` is one list for every text or one list per text."""
    if isinstance(texts, str):
        raise ValueError("texts is a string: pass a list of texts")
    shared = isinstance(labels, str) or labels is None or len(labels) == 0 or all(isinstance(x, str) for x in labels)
    if shared:
        check_labels(labels)
    per_text = [list(labels)] * len(texts) if shared else [list(x) for x in labels]
    if len(per_text) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(per_text)} label lists: pass one shared list or one list per text")
    for i, (text, cand) in enumerate(zip(texts, per_text)):
        validate_example(text, cand, where=f"texts[{i}]")
    return shared, per_text


@torch.inference_mode()
def score_labels(model, texts: list[str], labels: list[str] | list[list[str]], batch_size: int = 32,
                 max_labels_per_pass: int = 32) -> np.ndarray | list[np.ndarray]:
    """(n_texts, n_labels) probabilities for a shared label list; a list of arrays for per-text lists."""
    if max_labels_per_pass < 1 or batch_size < 1:
        raise ValueError("batch_size and max_labels_per_pass must be >= 1")
    if len(texts) == 0:
        raise ValueError("texts is empty: pass at least one text")
    shared, per_text = _per_text_labels(texts, labels)
    tok, cfg = model.tokenizer, model.config
    layout = cfg.layout()
    was_training = model.training
    model.eval()
    out = [np.zeros(len(c), dtype=np.float32) for c in per_text]
    text_ids = tok.encode_pieces(list(texts))
    unique = sorted({lab for c in per_text for lab in c})
    piece_of = dict(zip(unique, tok.encode_pieces(unique)))
    order = np.argsort([len(t) for t in text_ids], kind="stable")
    device = model.device
    try:
        for start in range(0, len(texts), batch_size):
            batch = [int(i) for i in order[start:start + batch_size]]
            pending = {i: list(range(len(per_text[i]))) for i in batch}
            while any(pending.values()):
                rows, owners = [], []
                for i in batch:
                    if not pending[i]:
                        continue
                    chunk = pending[i][:max_labels_per_pass]
                    row = tok.assemble(text_ids[i], [piece_of[per_text[i][j]] for j in chunk], **layout)
                    if not row.kept:
                        raise ValueError(f"label {per_text[i][chunk[0]]!r} does not fit in max_length={cfg.max_length} "
                                         "next to the text: shorten the label")
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
    finally:
        model.train(was_training)
    return np.stack(out) if shared else out


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
