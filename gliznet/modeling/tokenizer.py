"""GliZNet input layout: one sequence holds a text and all of its candidate labels.

    [CLS] text [SEP] label_1 [LAB] label_2 [LAB] ... label_n [LAB] [SEP]                  label_layout="close"
    [CLS] text [SEP] [LAB] label_1 [SEP] [LAB] label_2 [SEP] ... [LAB] label_n [SEP] [SEP]  label_layout="wrap"

``label_mask`` marks where each label lives: 0 for the text and every special token, ``k`` (1-based) for
the tokens of label ``k``.  The ``[LAB]`` token of label ``k`` (closing it, or opening it in the wrapped layout)
is what ``label_pooling="lab"`` reads.  The wrapped layout gives each label both ends of a sentence, as the
label encoded alone has them (``[CLS] label [SEP]``, with ``[LAB]`` playing ``[CLS]``): backbones with
relative position biases, like MPNet, need both ends and the order (bench/README.md "A bigger encoder").

Truncation never cuts a label in half.  The text keeps at least ``max(min_text_tokens,
text_budget * max_length)`` tokens (more when the labels leave room, up to ``max_text_tokens`` when given),
then whole labels are appended in order while they fit.  Each encoded sample reports ``kept_labels`` (indices
into its input label list) and ``dropped_labels`` so callers cut their targets to match, or score the dropped
labels in another pass.

Works with any Hugging Face tokenizer that has a start token (``cls``/``bos``) and an end token
(``sep``/``eos``): BERT WordPiece and byte-level BPE (ModernBERT, RoBERTa) alike.  Texts and labels are
tokenized once each, without special tokens (``encode_pieces``), and ``assemble`` builds the sequence from
those ids with plain list operations - the trainer pre-tokenizes with it and assembles per step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gliznet.errors import UserError

LAB_TOKEN = "[LAB]"
# The layout defaults, declared once: ``GliZNetConfig`` (gliznet.modeling.model) takes its own from these.
MAX_LENGTH = 512
TEXT_BUDGET = 0.5
MIN_TEXT_TOKENS = 32
LABEL_LAYOUTS = ("close", "wrap")
# The backbone's own sentence length (MiniLM's 256): the Embedder's and the cross-encoder baseline's truncation
# and TrainConfig.max_length.
BACKBONE_MAX_LENGTH = 256
# GliZNetConfig's text cap: the backbone's sentence length; longer texts scored worse on the dev portion
# (bench/README.md "Label text").
MAX_TEXT_TOKENS = BACKBONE_MAX_LENGTH


@dataclass
class Assembled:
    """One sample laid out: token ids, label mask, and which input labels made it in."""

    input_ids: list[int]
    label_mask: list[int]
    kept: list[int]
    dropped: list[int]


class GliZNetTokenizer:
    """Wraps a Hugging Face tokenizer, adds the ``[LAB]`` special token and builds GliZNet inputs."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        if LAB_TOKEN not in self.hf.get_vocab():
            self.hf.add_special_tokens({"additional_special_tokens": [LAB_TOKEN]})
        self.lab_token_id = self.hf.convert_tokens_to_ids(LAB_TOKEN)
        start = self.hf.cls_token_id if self.hf.cls_token_id is not None else self.hf.bos_token_id
        end = self.hf.sep_token_id if self.hf.sep_token_id is not None else self.hf.eos_token_id
        if start is None or end is None:
            raise ValueError("the tokenizer has no cls/bos or sep/eos token: set them on the tokenizer before wrapping it")
        self.start_id, self.end_id = int(start), int(end)
        pad = self.hf.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.end_id
        self.label_layout = "close"  # the default of assemble / __call__; GliZNet sets its config's

    # -- loading / saving ---------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str) -> "GliZNetTokenizer":
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load a tokenizer from {path!r}: pass a local model directory or a Hub id ({exc})") from exc
        return cls(hf)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.hf.save_pretrained(str(directory))

    def __len__(self) -> int:
        return len(self.hf)

    # -- pieces ---------------------------------------------------------------------------------------
    def encode_pieces(self, strings: list[str]) -> list[list[int]]:
        """Token ids of each string without special tokens (one batched, fast-tokenizer call)."""
        if not strings:
            return []
        return self.hf(list(strings), add_special_tokens=False)["input_ids"]

    def assemble(self, text_ids: list[int], label_ids: list[list[int]], max_length: int = MAX_LENGTH,
                 text_budget: float = TEXT_BUDGET, min_text_tokens: int = MIN_TEXT_TOKENS,
                 max_text_tokens: int | None = None, label_layout: str | None = None) -> Assembled:
        """Lay out one sample from pre-tokenized pieces; whole labels only, in the given order.  ``max_text_tokens``
        caps the text however much room the labels leave (None: no cap); ``label_layout`` None: the tokenizer's
        (``self.label_layout``, which a GliZNet sets to its config's)."""
        extra = label_overhead(label_layout or self.label_layout)
        label_total = sum(len(ids) + extra for ids in label_ids)
        room = max_length - 3  # [CLS] [SEP] ... [SEP]
        text_cap = max(min_text_tokens, int(text_budget * max_length), room - label_total)
        if max_text_tokens is not None:
            text_cap = min(text_cap, max_text_tokens)
        text = text_ids[: max(0, min(text_cap, room))]
        ids = [self.start_id, *text, self.end_id]
        mask = [0] * len(ids)
        kept: list[int] = []
        dropped: list[int] = []
        budget = max_length - len(ids) - 1
        for index, piece in enumerate(label_ids):
            need = len(piece) + extra
            if piece and need <= budget:
                k = len(kept) + 1
                if extra == 1:  # close: label [LAB]
                    ids.extend([*piece, self.lab_token_id])
                    mask.extend([k] * len(piece) + [0])
                else:  # wrap: [LAB] label [SEP]
                    ids.extend([self.lab_token_id, *piece, self.end_id])
                    mask.extend([0] + [k] * len(piece) + [0])
                budget -= need
                kept.append(index)
            else:
                dropped.append(index)
        ids.append(self.end_id)
        mask.append(0)
        return Assembled(ids, mask, kept, dropped)

    def pad(self, rows: list[Assembled], return_tensors: str | None = "pt") -> dict:
        """Right-pad assembled rows to the longest one."""
        width = max(len(r.input_ids) for r in rows)
        input_ids = [r.input_ids + [self.pad_id] * (width - len(r.input_ids)) for r in rows]
        attention = [[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in rows]
        label_mask = [r.label_mask + [0] * (width - len(r.label_mask)) for r in rows]
        batch = {"input_ids": input_ids, "attention_mask": attention, "label_mask": label_mask}
        if return_tensors == "pt":
            import torch

            batch = {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
        batch["kept_labels"] = [r.kept for r in rows]
        batch["dropped_labels"] = [r.dropped for r in rows]
        return batch

    # -- the usual call -------------------------------------------------------------------------------
    def __call__(self, texts: list[str], labels: list[list[str]], max_length: int = MAX_LENGTH,
                 text_budget: float = TEXT_BUDGET, min_text_tokens: int = MIN_TEXT_TOKENS,
                 return_tensors: str | None = "pt", max_text_tokens: int | None = None,
                 label_layout: str | None = None) -> dict:
        """Encode ``texts[i]`` with its candidate ``labels[i]``.

        Returns ``input_ids``, ``attention_mask``, ``label_mask`` (padded) and, per sample,
        ``kept_labels`` / ``dropped_labels`` (indices into ``labels[i]``).
        """
        if isinstance(texts, str):
            raise UserError("texts is a string: pass a list of texts")
        if len(texts) != len(labels):
            raise UserError(f"texts has {len(texts)} items but labels has {len(labels)}: pass one label list per text")
        if not texts:
            raise UserError("texts is empty: pass at least one text")
        if max_length < 8:
            raise UserError(f"max_length={max_length} is too small: use at least 8")
        for i, (text, cand) in enumerate(zip(texts, labels)):
            validate_example(text, cand, where=f"sample {i}")
        text_ids = self.encode_pieces(texts)
        unique = sorted({lab for cand in labels for lab in cand})
        piece_of = dict(zip(unique, self.encode_pieces(unique)))
        rows = [self.assemble(t, [piece_of[lab] for lab in cand], max_length, text_budget, min_text_tokens,
                              max_text_tokens, label_layout) for t, cand in zip(text_ids, labels)]
        return self.pad(rows, return_tensors)


def label_overhead(label_layout: str) -> int:
    """Special tokens a label brings beside its own tokens: 1 (``[LAB]``) closed, 2 (``[LAB]`` ... ``[SEP]``)
    wrapped."""
    if label_layout not in LABEL_LAYOUTS:
        raise UserError(f"label_layout={label_layout!r} is not supported: use one of {LABEL_LAYOUTS}")
    return 1 if label_layout == "close" else 2


def check_labels(labels, where: str | None = None) -> None:
    """The one check of a candidate label list, for every scorer: a list (not a string), not empty, of
    non-empty strings, each once.  ``where`` (e.g. ``"texts[3]"``) starts the error when given."""
    at = f"{where}: " if where else ""
    if isinstance(labels, str):
        raise UserError(f"{at}labels is a string: pass a list of labels, e.g. ['sports', 'politics']")
    if labels is None or len(labels) == 0:
        raise UserError(f"{at}labels is empty: pass at least one candidate label")
    for lab in labels:
        if not isinstance(lab, str) or not lab.strip():
            raise UserError(f"{at}a label is empty: pass non-empty label strings")
    if len(set(labels)) != len(labels):
        dup = sorted({lab for lab in labels if labels.count(lab) > 1})
        raise UserError(f"{at}duplicate labels {dup}: pass each candidate label once (labels has duplicates)")


def validate_example(text: str, labels: list[str], where: str = "input") -> None:
    """Clear errors for the inputs a classifier cannot score: an empty text, or a bad label list (``check_labels``)."""
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: the text is empty: pass a non-empty string")
    check_labels(labels, where)
