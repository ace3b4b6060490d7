"""Training data for GliZNet: a dataset folder's triplets -> token ids once -> a batch per step.

Read top to bottom:

1. ``load_triplets`` reads ``DATA/triplet`` (a ``DatasetDict`` saved with ``save_to_disk``; splits
   ``train``/``test``; columns ``text``, ``labels``, ``not_labels``).
2. ``prior_vectors`` (only with the ``PriorAnchor`` loss) encodes every text and label once with the initial
   backbone, the way the embedding baseline does: the vectors the anchor holds GliZNet's near.
3. ``pretokenize`` runs once, with ``datasets.map``: token ids of the text and of every label (plus the
   ``_``->space variant of labels that have one), and a ``length`` column for length bucketing.  No tokenizer
   runs inside the training loop.
4. ``LabelCollator`` builds each batch from ids with list operations (cheap, runs in DataLoader workers):
   positives + negatives (+ ``extra_negatives`` other samples' labels from the same batch), shuffled per
   step, capped at ``max_labels_per_sample`` (always keeping a positive), laid out by
   ``GliZNetTokenizer.assemble`` and padded; targets are cut to the labels that fit.

Every knob is a field of ``gliznet.training.trainer.TrainConfig`` (layout ones of its ``model``); ``gliznet.training.trainer`` wires
these steps into the ``Trainer``.  Steps 2 and 3 take a ``label_text``, ``config.label_text()``: the bare
strings by default (``train_label_text="bare"``, measured better on the dev portion), or with
``train_label_text="model"`` the rendering of ``config.model`` (``label_template``, ``text_template``,
``label_descriptions``; ``gliznet.modeling.label_text``), the strings ``GliZNet.score`` sees.  Label *names* stay the keys
(targets, in-batch negatives, prior vectors).  Rows pre-tokenized with a rendering carry its ``label_text``
fingerprint, and step 4 refuses rows whose rendering is not ``config.label_text()``'s, so a run never mixes
strings rendered two ways.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import torch

from gliznet.modeling.label_text import LabelText
from gliznet.modeling.tokenizer import GliZNetTokenizer

if TYPE_CHECKING:
    from gliznet.training.config import TrainConfig




# -- 2. prior vectors (PriorAnchor) -----------------------------------------------------------------
def prior_vectors(split, backbone: str | None, max_length: int, label_text: LabelText | None = None):
    """``PriorAnchor`` targets, computed once with the initial backbone (the embedding baseline's encoding):
    a ``prior_text`` column on ``split`` and a ``{label: vector}`` dict for every label it holds (the vectors
    of the rendered strings when ``label_text`` is given, keyed by label name)."""
    from gliznet.modeling.backbone import Embedder

    label_text = label_text or LabelText()
    embedder = Embedder(backbone, max_length=max_length)
    names = sorted({lab for col in ("labels", "not_labels") for labs in split[col] for lab in labs})
    label_vecs = embedder.encode(label_text.labels(names))
    text_vecs = embedder.encode(label_text.texts(list(split["text"])))
    split = split.add_column("prior_text", [v.tolist() for v in text_vecs])
    return split, dict(zip(names, torch.from_numpy(label_vecs).unbind()))


# -- 3. pre-tokenization ----------------------------------------------------------------------------
def pretokenize(split, tokenizer: GliZNetTokenizer, max_length: int, num_proc: int | None = None,
                label_text: LabelText | None = None):
    """Adds ``text_ids``, ``pos_ids``/``neg_ids`` (+ ``*_alt`` for the ``_``->space variants) and ``length``;
    the ids are of the strings ``label_text`` renders (the texts and labels as given without it)."""
    label_text = label_text or LabelText()

    def encode(batch):
        text_ids = [ids[: max_length - 3] for ids in tokenizer.encode_pieces(label_text.texts(batch["text"]))]
        out = {"text_ids": text_ids}
        for col, key in (("labels", "pos"), ("not_labels", "neg")):
            flat = [lab for labs in batch[col] for lab in labs]
            alt = [lab.replace("_", " ") for lab in flat]
            ids = tokenizer.encode_pieces(label_text.labels(flat))
            alt_ids = tokenizer.encode_pieces(label_text.labels([a for a, f in zip(alt, flat) if a != f]))
            alt_iter = iter(alt_ids)
            alt_full = [next(alt_iter) if a != f else [] for a, f in zip(alt, flat)]
            sizes = [len(labs) for labs in batch[col]]
            out[f"{key}_ids"], out[f"{key}_alt"] = [], []
            start = 0
            for n in sizes:
                out[f"{key}_ids"].append(ids[start:start + n])
                out[f"{key}_alt"].append(alt_full[start:start + n])
                start += n
        out["length"] = [len(t) + 2 + sum(len(x) + 1 for x in p + n)
                         for t, p, n in zip(text_ids, out["pos_ids"], out["neg_ids"])]
        if label_text.active:  # which rendering these ids are of (LabelCollator checks it)
            out["label_text"] = [label_text.fingerprint] * len(text_ids)
        return out

    split = split.filter(lambda row: bool(row["text"] and row["text"].strip()) and bool(row["labels"]))
    return split.map(encode, batched=True, batch_size=1000, num_proc=num_proc, desc="pre-tokenize")


# -- 4. batches -------------------------------------------------------------------------------------
class LabelCollator:
    """Per-step label sampling and layout from pre-tokenized ids; returns model inputs + ``labels`` targets.

    Reads ``config`` (a ``TrainConfig``): ``max_length`` (tokens per training sequence), the label sampling
    fields, and ``config.model.layout`` for the rest of the layout (text budget and cap)."""

    def __init__(self, tokenizer: GliZNetTokenizer, config: TrainConfig, train: bool = True,
                 label_priors: dict[str, torch.Tensor] | None = None):
        self.tokenizer = tokenizer
        self.config = config
        self.train = train
        self.label_priors = label_priors  # label -> initial-backbone vector (PriorAnchor); rows carry prior_text
        self.rendering = config.label_text().fingerprint  # the rows must carry it; None = options off

    def _variant(self, ids, alt):
        p = self.config.underscore_to_space_prob
        return alt if (self.train and alt and random.random() < p) else ids

    def __call__(self, features: list[dict]) -> dict:
        cfg = self.config
        if features and features[0].get("label_text") != self.rendering:
            raise ValueError("the rows were pre-tokenized with another label text rendering than the training "
                             "config's (train_label_text, and config.model's label_template / text_template / "
                             "label_descriptions): pass label_text=config.label_text() to pretokenize and prior_vectors")
        # the label layout of the model being trained (its tokenizer's: resolved from "auto", or an --init model's)
        layout = {**cfg.model.layout(cfg.max_length), "label_layout": self.tokenizer.label_layout}
        rows, targets, names = [], [], []
        for index, feat in enumerate(features):
            own = set(feat["labels"]) | set(feat["not_labels"])
            cands = [(self._variant(i, a), 1.0, name) for i, a, name in zip(feat["pos_ids"], feat["pos_alt"], feat["labels"])]
            cands += [(self._variant(i, a), 0.0, name)
                      for i, a, name in zip(feat["neg_ids"], feat["neg_alt"], feat["not_labels"])]
            if self.train and cfg.extra_negatives > 0 and len(features) > 1:
                pool = [(ids, lab) for j, other in enumerate(features) if j != index
                        for ids, lab in zip(other["pos_ids"] + other["neg_ids"], other["labels"] + other["not_labels"])
                        if lab not in own]
                seen = set()
                extra = []
                for ids, lab in random.sample(pool, min(len(pool), cfg.extra_negatives * 2)):
                    if lab not in seen and len(extra) < cfg.extra_negatives:
                        seen.add(lab)
                        extra.append((ids, 0.0, lab))
                cands += extra
            if self.train and cfg.label_shuffle:
                random.shuffle(cands)
            cands = cands[: cfg.max_labels_per_sample] if len(cands) > cfg.max_labels_per_sample else cands
            if not any(c[1] for c in cands):  # the cap dropped every positive: put one back
                positives = [(self._variant(i, a), 1.0, name)
                             for i, a, name in zip(feat["pos_ids"], feat["pos_alt"], feat["labels"])]
                cands[random.randrange(len(cands))] = random.choice(positives)
            row = self.tokenizer.assemble(feat["text_ids"], [c[0] for c in cands], **layout)
            rows.append(row)
            targets.append([cands[k][1] for k in row.kept])
            names.append([cands[k][2] for k in row.kept])
        batch = self.tokenizer.pad(rows)
        width = max(1, max(len(t) for t in targets))
        batch["labels"] = torch.tensor([t + [-100.0] * (width - len(t)) for t in targets], dtype=torch.float32)
        if self.train and self.label_priors is not None:
            batch["prior_text"] = torch.tensor([feat["prior_text"] for feat in features], dtype=torch.float32)
            prior = torch.zeros(len(features), width, batch["prior_text"].shape[1])
            for b, row_names in enumerate(names):
                if row_names:
                    prior[b, :len(row_names)] = torch.stack([self.label_priors[n] for n in row_names])
            batch["prior_labels"] = prior
        batch.pop("kept_labels")
        batch.pop("dropped_labels")
        return batch
