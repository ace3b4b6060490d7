"""GliZNet: score every candidate label of a text in one encoder pass.

Reading order: ``GliZNetConfig`` -> ``ScoreHead`` -> ``GliZNet.forward`` -> ``GliZNet.predict``/``score``.

0. ``predict``/``score`` first render each label and text with ``GliZNet.label_text`` (``gliznet.modeling.label_text``:
   the config's ``label_template``, ``text_template`` and ``label_descriptions``; by default a label is encoded
   as "This text is about {label}: {description}." with the shipped descriptions, a text as given; set the
   options to None for the bare strings).

1. The tokenizer lays a sample out as ``[CLS] text [SEP] l_1 [LAB] l_2 [LAB] ... [SEP]`` with a label mask
   (0 for text/special tokens, k for the tokens of label k).
2. One encoder pass (any ``AutoModel`` backbone) gives a hidden state per token.  Attention is either
   * ``label_attention="full"`` - the original GliZNet: every token sees every token, labels read the text;
   * ``label_attention="isolated"`` - a 4-D block-diagonal mask: text tokens (``[CLS] text [SEP]``) see only
     the text, each label's tokens (with their closing ``[LAB]``) see only that label, and position ids restart
     for every label.  One pass then computes exactly what encoding the text and each label *separately*
     would, so at initialisation GliZNet approximately reproduces the embedding-similarity baseline (cosine
     of mean-pooled vectors) and training starts from that pretrained prior.  The text side is exact.  A
     separately encoded label is ``[CLS] label [SEP]``; here it is ``label [LAB]`` with the label at positions
     1..m and ``[LAB]`` at position 0 with ``[CLS]``'s embedding (attention ignores token order, so
     ``[LAB]`` plays ``[CLS]``); only the ``[SEP]`` is missing, which leaves the label vectors at cosine ~0.9
     of the separately encoded ones.
   * ``label_attention="labels_read_text"`` - as isolated, but each label's tokens also attend to the text
     tokens (the text still sees only itself, so the text vector keeps its pretrained prior); labels still
     never see each other.
3. Pooling: text = ``[CLS]`` state or the mean over ``[CLS] text [SEP]`` (``text_pooling``); label k = mean of
   its tokens and its ``[LAB]``, or its ``[LAB]`` state alone (``label_pooling``).  ``text_pooling="label"``
   reads the text *for each label*: ``t_k = sum_i softmax_i(q(l_k) . k(h_i) / sqrt(d)) h_i`` over the text
   tokens, with ``q`` initialised to zero, so an untrained model pools the plain mean and scores exactly as
   ``"mean"``.  Optional Linear+LayerNorm projections, one per side.
4. Similarity: cosine, dot or bilinear (``t^T W l`` on normalised vectors, ``W`` initialised to identity, so
   it starts as cosine).
5. The ``ScoreHead`` turns a similarity into logits with learned scales: ``logits = similarity *
   exp(logit_scale)`` (initial exp = 2.0 as in the seed) feed the softmax-over-labels loss, and
   ``score_logits = similarity * exp(t) + b`` the BCE loss; a label's reported score is
   ``sigmoid(score_logits)``.  The losses (``gliznet.modeling.losses``, weighted by a ``LossConfig``) hold no parameters.

Labels are padded per batch to the largest label count; ``label_valid`` says which exist.  Folders saved before
the score head existed (loss weights in ``gliznet_config.json``, the BCE scale under ``loss_fn.bce.*``) still
load: ``GliZNetConfig.from_dict`` and ``from_pretrained`` map the old names.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gliznet.errors import UserError
from gliznet.modeling.config import (
    BACKBONE_DIR,
    CONFIG_NAME,
    HEAD_WEIGHTS,
    GliZNetConfig,
)
from gliznet.modeling.label_text import LabelText, save_descriptions
from gliznet.modeling.losses import GliZNetLoss, LossConfig
from gliznet.modeling.tokenizer import GliZNetTokenizer

LEGACY_WEIGHT_KEYS = {"logit_scale": "score_head.logit_scale", "loss_fn.bce.log_temperature": "score_head.log_temperature",
                      "loss_fn.bce.bias": "score_head.bias"}


@dataclass
class GliZNetOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor  # (B, L) similarity * exp(logit_scale): the softmax-over-labels logits
    score_logits: torch.Tensor  # (B, L) similarity * exp(t) + b: sigmoid gives the reported score
    similarity: torch.Tensor  # (B, L)
    label_valid: torch.Tensor  # (B, L) bool
    text_embeds: torch.Tensor  # (B, D), or (B, L, D) with text_pooling="label" (the text as read for each label)
    label_embeds: torch.Tensor  # (B, L, D)
    loss_parts: dict | None = None

    # the transformers Trainer reads outputs by key or index
    def __getitem__(self, key):
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]

    def keys(self):
        return [k for k in ("loss", "logits", "label_valid") if getattr(self, k) is not None]

    def to_tuple(self):
        return tuple(getattr(self, k) for k in self.keys())


class ScoreHead(nn.Module):
    """Similarity -> logits: two learned affine maps of the same text-label similarity ``s``.

        logits       = s * exp(logit_scale)                 softmax over a sample's labels (a ranking)
        score_logits = s * exp(log_temperature) + bias      binary cross-entropy per label
        score        = sigmoid(score_logits)                what ``predict``/``score`` report, independent per label

    Both scales start at the config's ``init_scale`` / ``init_temperature`` and are clamped at ``max_scale``.
    """

    def __init__(self, config: GliZNetConfig):
        super().__init__()
        self.max_log_scale = math.log(config.max_scale)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(config.init_scale)))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(config.init_temperature)))
        self.bias = nn.Parameter(torch.tensor(float(config.init_bias)))

    def forward(self, similarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = similarity * self.logit_scale.clamp(max=self.max_log_scale).exp()
        score_logits = similarity.float() * self.log_temperature.clamp(max=self.max_log_scale).exp() + self.bias
        return logits, score_logits

    def probability(self, similarity: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(similarity)[1])


def default_label_layout(backbone: nn.Module) -> str:
    """``label_layout="auto"``: "wrap" on a backbone with relative position biases (MPNet's
    ``relative_attention_bias``, DeBERTa's ``rel_embeddings``), which reads ``label [LAB]`` far from the label
    alone; else "close", the layout every model was trained with before "wrap" existed."""
    encoder = getattr(backbone, "encoder", None)
    relative = any(hasattr(encoder, name) for name in ("relative_attention_bias", "rel_embeddings"))
    return "wrap" if relative else "close"


def _resolve(path_or_id: str | None) -> str:
    from gliznet.modeling.backbone import resolve_backbone

    return resolve_backbone(path_or_id)


# -- the saved folder ----------------------------------------------------------------------------------
TRAINED_MODEL_DIR = "model"  # `gliznet train --out OUT` saves its model in OUT/model
MANIFEST_NAME = "gliznet_manifest.json"  # written last by save_pretrained: gliznet version and every file


def model_folder(path: str | os.PathLike) -> Path:
    """The GliZNet folder at ``path``: ``path`` itself, or ``path/model`` when ``path`` is the ``--out`` folder
    of ``gliznet train``.  The one place that decides it: every ``--model`` option and ``from_pretrained`` ask here."""
    path = Path(path)
    for folder in (path, path / TRAINED_MODEL_DIR):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise UserError(f"{path} has no {CONFIG_NAME} (nor {TRAINED_MODEL_DIR}/{CONFIG_NAME}): pass the --out folder of "
                    "`gliznet train`, its model/ subfolder, or a folder written by GliZNet.save_pretrained")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_manifest(directory: Path) -> None:
    """A folder with a manifest holds every file it lists, each of the size (and, for folders saved since hashes
    were added, the SHA-256) it lists: a copy cut short or a damaged file fails here, by name, as one
    ``UserError``.  Folders saved before manifests existed have none and load as before."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        return
    fix = "copy the whole model folder again, or save (train) the model again"
    try:
        manifest = json.loads(manifest_path.read_text())
        files, hashes = manifest["files"], manifest.get("sha256", {})
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{manifest_path} is damaged (not the JSON save_pretrained writes): {fix}") from None
    missing = [name for name in files if not (directory / name).is_file()]
    if missing:
        raise UserError(f"{directory} lacks {', '.join(missing[:3])} listed in its {MANIFEST_NAME}: it is an incomplete "
                        "copy; copy the whole folder again, or save the model again")
    for name, size in files.items():
        actual = (directory / name).stat().st_size
        if actual != size:
            raise UserError(f"{directory / name} is damaged: {actual} bytes where its {MANIFEST_NAME} lists {size}: {fix}")
        if name in hashes and _sha256(directory / name) != hashes[name]:
            raise UserError(f"{directory / name} is damaged: its SHA-256 differs from the one in {MANIFEST_NAME}: {fix}")


def _check_replaceable(directory: Path) -> None:
    """``save_pretrained`` replaces ``directory`` as a whole: only a missing or empty folder, or a GliZNet folder."""
    if directory.is_file():
        raise UserError(f"{directory} is a file: pass a folder to save the model in")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / CONFIG_NAME).is_file():
        raise UserError(f"{directory} is a folder that holds no GliZNet model, and saving replaces the whole folder: "
                        "pass a new folder (or an earlier model's)")


class GliZNet(nn.Module):
    """Backbone + pooling + similarity + ``ScoreHead``; ``predict``/``score`` for inference."""

    accepts_loss_kwargs = False  # the loss is a per-batch mean: let the Trainer scale it for accumulation

    def __init__(self, config: GliZNetConfig, backbone: nn.Module, tokenizer: GliZNetTokenizer,
                 loss: LossConfig | None = None):
        super().__init__()
        if config.label_layout == "auto":
            config = replace(config, label_layout=default_label_layout(backbone))
        self.config = config
        self.backbone = backbone
        self.tokenizer = tokenizer
        tokenizer.label_layout = config.label_layout  # what a plain tokenizer(texts, labels) call lays out
        hidden = backbone.config.hidden_size
        dim = config.projection_dim or hidden
        if config.projection_dim:
            self.text_proj = nn.Sequential(nn.Linear(hidden, dim), nn.LayerNorm(dim))
            self.label_proj = nn.Sequential(nn.Linear(hidden, dim), nn.LayerNorm(dim))
        else:
            self.text_proj = nn.Identity()
            self.label_proj = nn.Identity()
        if config.similarity == "bilinear":
            self.bilinear = nn.Parameter(torch.eye(dim))
        if config.text_pooling == "label":  # label-conditioned attention pool; q = 0 pools the plain mean
            self.pool_query = nn.Linear(hidden, config.pool_dim)
            self.pool_key = nn.Linear(hidden, config.pool_dim)
            nn.init.zeros_(self.pool_query.weight)
            nn.init.zeros_(self.pool_query.bias)
        self.score_head = ScoreHead(config)
        self.loss_fn = GliZNetLoss(loss)  # no parameters: only the weights of the training objective
        self._label_text: LabelText | None = None
        self._label_text_key: tuple | None = None
        self._config_dir: Path | None = None  # a saved model's folder: its config's relative paths start there
        self.label_vector_cache = None  # gliznet.modeling.predict.LabelVectorCache, made by the first score

    @property
    def label_text(self) -> LabelText:
        """How labels and texts are rendered for the encoder (``gliznet.modeling.label_text``), from the config's
        ``label_template`` / ``text_template`` / ``label_descriptions``; rebuilt when those change."""
        c = self.config
        key = (c.label_template, c.text_template, c.label_descriptions)
        if self._label_text is None or self._label_text_key != key:
            self._label_text = LabelText.from_config(c, self._config_dir)
            self._label_text_key = key
        return self._label_text

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_backbone(cls, backbone: str | None = None, config: GliZNetConfig | None = None,
                      loss: LossConfig | None = None) -> "GliZNet":
        """A fresh GliZNet on a pretrained encoder (``None`` -> the packaged MiniLM); ``config`` is copied."""
        from transformers import AutoModel

        path = _resolve(backbone)
        tokenizer = GliZNetTokenizer.from_pretrained(path)
        try:
            encoder = AutoModel.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load backbone {backbone!r}: pass a local model directory or a Hub id ({exc})") from exc
        old_vocab = encoder.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > old_vocab:
            encoder.resize_token_embeddings(len(tokenizer))
        with torch.no_grad():  # [LAB] summarises its label the way [CLS] summarises a sentence
            emb = encoder.get_input_embeddings().weight
            emb[tokenizer.lab_token_id] = emb[tokenizer.start_id]
        config = replace(config or GliZNetConfig(), backbone=backbone if backbone not in (None, "") else path)
        return cls(config, encoder, tokenizer, loss)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike, loss: LossConfig | None = None) -> "GliZNet":
        """Load a saved GliZNet folder, the ``--out`` folder of ``gliznet train`` (its ``model/`` inside), or a Hub
        repo holding one (``model_folder``); ``loss`` for further training."""
        from safetensors.torch import load_file
        from transformers import AutoModel

        name = os.fspath(path_or_hub_id)
        directory = Path(name)
        if not directory.is_dir():
            try:
                from huggingface_hub import snapshot_download

                directory = Path(snapshot_download(name))
            except Exception as exc:  # noqa: BLE001 - any Hub failure means the same thing to the user
                raise UserError(f"cannot find GliZNet model {name!r}: pass the --out folder of `gliznet train`, a folder "
                                f"written by save_pretrained, or a reachable Hub id ({type(exc).__name__})") from exc
        directory = model_folder(directory)
        _check_manifest(directory)
        config = GliZNetConfig.from_dict(json.loads((directory / CONFIG_NAME).read_text()))
        tokenizer = GliZNetTokenizer.from_pretrained(str(directory))
        encoder = AutoModel.from_pretrained(str(directory / BACKBONE_DIR))
        model = cls(config, encoder, tokenizer, loss)
        model._config_dir = directory
        model.label_text  # noqa: B018 - a missing descriptions file fails the load, not the first score
        head = {LEGACY_WEIGHT_KEYS.get(k, k): v for k, v in load_file(str(directory / HEAD_WEIGHTS)).items()}
        missing, unexpected = model.load_state_dict(head, strict=False)
        if unexpected or any(not k.startswith("backbone.") for k in missing):
            raise ValueError(f"{directory}: head weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
        return model.eval()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """config + backbone (HF format) + head weights + tokenizer + a short model card, and last a manifest
        (``gliznet_manifest.json``: the gliznet version and every file with its size and SHA-256, which
        ``from_pretrained`` checks).

        Everything is written to a staging folder next to ``directory`` and renamed onto it, so ``directory``
        always holds one whole model, the earlier one or this one (an earlier model's folder is replaced as a whole)."""
        import shutil
        import uuid

        from safetensors.torch import save_file

        from gliznet import __version__
        from gliznet._io import atomic_write_text, replace_path

        directory = Path(os.path.abspath(directory))
        _check_replaceable(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        stage = directory.with_name(f".{directory.name}.staging-{uuid.uuid4().hex[:8]}")
        stage.mkdir()
        try:
            saved = asdict(self.config)
            if self.config.label_descriptions:  # the folder carries its descriptions, so it can move
                saved["label_descriptions"] = save_descriptions(self.label_text, stage)
            (stage / CONFIG_NAME).write_text(json.dumps(saved, indent=2))
            self.backbone.save_pretrained(str(stage / BACKBONE_DIR))
            head = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if not k.startswith("backbone.")}
            save_file(head, str(stage / HEAD_WEIGHTS))
            self.tokenizer.save_pretrained(stage)
            (stage / "README.md").write_text(model_card(self.config))
            paths = {p.relative_to(stage).as_posix(): p for p in sorted(stage.rglob("*")) if p.is_file()}
            files = {name: path.stat().st_size for name, path in paths.items()}
            hashes = {name: _sha256(path) for name, path in paths.items()}
            atomic_write_text(stage / MANIFEST_NAME, json.dumps({"gliznet_version": __version__, "files": files,
                                                                 "sha256": hashes}, indent=2) + "\n")
            replace_path(stage, directory)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- forward ---------------------------------------------------------------------------------------
    def _groups(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
        """Attention group per token: 0 text ([CLS] text [SEP]), k label k (+ its [LAB], and its closing [SEP] when
        wrapped), -1 final [SEP], -2 pad."""
        T = input_ids.shape[1]
        idx = torch.arange(T, device=input_ids.device).expand_as(input_ids)
        is_lab = input_ids == self.tokenizer.lab_token_id
        first = torch.where((label_mask > 0) | is_lab, idx, T).min(dim=1, keepdim=True).values
        zero = torch.zeros_like(label_mask[:, :1])
        prev = torch.cat([zero, label_mask[:, :-1]], dim=1)
        if self.config.label_layout == "wrap":  # [LAB] label [SEP]: [LAB] opens the next label, [SEP] closes one
            nxt = torch.cat([label_mask[:, 1:], zero], dim=1)
            group = torch.where(is_lab, nxt, label_mask)
            group = torch.where((label_mask == 0) & ~is_lab & (prev > 0), prev, group)
        else:  # label [LAB]: [LAB] closes the label before it
            group = torch.where(is_lab, prev, label_mask)
        group = torch.where((idx >= first) & (group == 0), torch.full_like(group, -1), group)
        return torch.where(attention_mask.bool(), group, torch.full_like(group, -2))

    def _isolated_inputs(self, group: torch.Tensor, is_lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Block-diagonal 4-D mask, and positions restarting per group: the text 0..n, a label's tokens 1..m and
        its [LAB] 0 (closed: attention ignores token order, so [LAB] plays the [CLS] of a separately encoded
        label), its closing [SEP] m+1 when wrapped; all shifted by the backbone's first position."""
        T = group.shape[1]
        idx = torch.arange(T, device=group.device).expand_as(group)
        new_run = torch.ones_like(group, dtype=torch.bool)
        new_run[:, 1:] = group[:, 1:] != group[:, :-1]
        run_start = torch.where(new_run, idx, torch.zeros_like(idx)).cummax(dim=1).values
        if self.config.label_layout == "wrap":  # a label's run starts at its [LAB]
            position_ids = idx - run_start
        else:
            position_ids = (idx - run_start + (group > 0).long()).masked_fill(is_lab, 0)
        position_ids = position_ids + self._first_position
        allowed = group.unsqueeze(2) == group.unsqueeze(1)  # (B, T, T): query i may see key j
        if self.config.label_attention == "labels_read_text":  # a label's tokens also read the text
            allowed = allowed | ((group > 0).unsqueeze(2) & (group == 0).unsqueeze(1))
        allowed = allowed.unsqueeze(1)  # (B, 1, T, T)
        if getattr(self.backbone.config, "_attn_implementation", "sdpa") == "eager":
            mask = torch.zeros(allowed.shape, dtype=torch.float32, device=group.device)
            mask = mask.masked_fill(~allowed, torch.finfo(torch.float32).min)
        else:
            mask = allowed
        return mask, position_ids

    @property
    def _first_position(self) -> int:
        """The position id of a sequence's first token: 0 for BERT; ``padding_idx + 1`` for backbones whose
        position table reserves the rows up to the padding index (RoBERTa, MPNet, XLM-R count from 2)."""
        table = getattr(getattr(self.backbone, "embeddings", None), "position_embeddings", None)
        padding_idx = getattr(table, "padding_idx", None)
        return 0 if padding_idx is None else padding_idx + 1

    def encode(self, input_ids, attention_mask, label_mask):
        """Pooled (text (B, D), labels (B, L, D), label_valid (B, L))."""
        kwargs = {}
        is_lab = input_ids == self.tokenizer.lab_token_id
        group = self._groups(input_ids, attention_mask, label_mask)
        lab_of = torch.where(is_lab, group, torch.zeros_like(group))  # k at the [LAB] of label k
        if self.config.label_attention != "full":
            mask, kwargs["position_ids"] = self._isolated_inputs(group, is_lab)
        else:
            mask = attention_mask
        hidden = self.backbone(input_ids=input_ids, attention_mask=mask, **kwargs).last_hidden_state
        n_labels = max(int(label_mask.max()), 1)
        if self.config.label_pooling == "mean":  # the label's tokens, its [LAB] (and its closing [SEP], wrapped)
            member = F.one_hot(group.clamp(min=0), n_labels + 1)[..., 1:].to(hidden.dtype)  # (B, T, L)
        else:
            member = F.one_hot(lab_of, n_labels + 1)[..., 1:].to(hidden.dtype)
        counts = member.sum(1)  # (B, L)
        labels = torch.einsum("btl,btd->bld", member, hidden) / counts.clamp(min=1.0).unsqueeze(-1)
        if self.config.text_pooling == "cls":
            text = hidden[:, 0]
        else:
            in_text = group == 0  # (B, T): [CLS] text [SEP]
            if self.config.text_pooling == "label":
                text = self._label_pool(hidden, in_text, labels)
            else:
                weight = in_text.unsqueeze(-1).to(hidden.dtype)
                text = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        return self.text_proj(text), self.label_proj(labels), counts > 0

    def _label_pool(self, hidden: torch.Tensor, in_text: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L, D): label k's own text vector, ``sum_i softmax_i(q(l_k) . k(h_i) / sqrt(d)) h_i`` over the text
        tokens.  ``q`` starts at zero: every weight is then 1/n and each label gets the plain mean."""
        query = self.pool_query(labels)  # (B, L, A)
        key = self.pool_key(hidden)  # (B, T, A)
        logits = torch.einsum("bla,bta->blt", query, key).float() / math.sqrt(query.shape[-1])
        logits = logits.masked_fill(~in_text.unsqueeze(1), float("-inf"))
        weights = torch.softmax(logits, dim=-1).to(hidden.dtype)
        return torch.einsum("blt,btd->bld", weights, hidden)

    def similarity(self, text: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) from a text vector (B, D) - or one per label (B, L, D), ``text_pooling="label"`` - and (B, L, D),
        or one label set (L, D) shared by every text (the cached label vectors of ``gliznet.modeling.predict``)."""
        if labels.dim() == 2:
            pattern = "bd,ld->bl"
        else:
            pattern = "bd,bld->bl" if text.dim() == 2 else "bld,bld->bl"
        if self.config.similarity == "dot":
            return torch.einsum(pattern, text, labels)
        t = F.normalize(text.float(), dim=-1)
        lab = F.normalize(labels.float(), dim=-1)
        if self.config.similarity == "bilinear":
            t = t @ self.bilinear
        return torch.einsum(pattern, t, lab)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, label_mask: torch.Tensor,
                labels: torch.Tensor | None = None, prior_text: torch.Tensor | None = None,
                prior_labels: torch.Tensor | None = None, **_: object) -> GliZNetOutput:
        """``labels`` (optional targets, (B, L) with 1/0, -100 for padding) -> also the training loss;
        ``prior_text`` (B, D) / ``prior_labels`` (B, L', D) -> also the ``PriorAnchor`` term."""
        text, label_vecs, valid = self.encode(input_ids, attention_mask, label_mask)
        sim = self.similarity(text, label_vecs)
        logits, score_logits = self.score_head(sim)
        loss = parts = None
        if labels is not None:
            L = sim.shape[1]
            targets = labels[:, :L].to(sim.dtype)
            if targets.shape[1] < L:
                raise ValueError(f"labels has {targets.shape[1]} columns but the inputs hold {L} labels: pass one target per label")
            valid = valid & (labels[:, :L] >= 0)
            scale = self.score_head.logit_scale.clamp(max=self.score_head.max_log_scale).exp()
            loss, parts = self.loss_fn(sim, logits, score_logits, label_vecs, targets, valid, text, prior_text,
                                       prior_labels, scale=scale)
        return GliZNetOutput(loss, logits, score_logits, sim, valid, text, label_vecs, parts)

    # -- inference (the chunked batching lives in gliznet.modeling.predict) -------------------------------------
    def score(self, texts: list[str], labels: list[str] | list[list[str]], batch_size: int = 32,
              max_labels_per_pass: int = 32) -> np.ndarray | list[np.ndarray]:
        """Label probabilities: (n_texts, n_labels) for one shared label list (the evaluator's Scorer
        protocol), or one array per text when each text has its own label list.  Labels and texts are
        rendered by ``self.label_text`` first (unchanged with its options off)."""
        from gliznet.modeling.predict import score_labels

        texts, labels = self.label_text.apply(texts, labels)
        return score_labels(self, texts, labels, batch_size=batch_size, max_labels_per_pass=max_labels_per_pass)

    def predict(self, texts: list[str], labels: list[str] | list[list[str]], threshold: float | None = None,
                batch_size: int = 32, max_labels_per_pass: int = 32) -> list[dict[str, float]]:
        """Per text, ``{label: probability}`` sorted by score; with ``threshold`` only labels scoring >= it."""
        from gliznet.modeling.predict import predict

        shown_texts, shown_labels = self.label_text.apply(texts, labels)
        results = predict(self, shown_texts, shown_labels, threshold=threshold, batch_size=batch_size,
                          max_labels_per_pass=max_labels_per_pass)
        return self.label_text.names_back(results, labels)


def model_card(config: GliZNetConfig) -> str:
    return f"""---
library_name: gliznet
tags: [zero-shot-classification, gliznet]
---
# GliZNet zero-shot classifier

Scores every candidate label of a text in one encoder pass
(`[CLS] text [SEP] label_1 [LAB] label_2 [LAB] ... [SEP]`).

- backbone: `{config.backbone}`
- label attention: `{config.label_attention}`; text pooling: `{config.text_pooling}`; label pooling: `{config.label_pooling}`
- similarity: `{config.similarity}`; projection: `{config.projection_dim}`
- weights: `{config.wise_alpha}` x fine-tuned + `{1 - config.wise_alpha:g}` x initial (WiSE-FT)
- label template: `{config.label_template}`; text template: `{config.text_template}`; label descriptions: `{config.label_descriptions}`

```python
from gliznet import GliZNet
model = GliZNet.from_pretrained("path/to/this/dir")
model.predict(["I loved this film"], ["positive", "negative"])
```
Scores are independent sigmoid probabilities; for single-label tasks take the argmax.{_calibration_note(config)}
"""


def _calibration_note(config: GliZNetConfig) -> str:
    if config.calibration in (None, "none"):
        return ""
    return (f"\nScored `{config.calibration}`-calibrated by `gliznet evaluate` and the weekly gate (each label's mean "
            "score over the texts scored together subtracted before the argmax; the recipe this model was trained "
            "for). `predict` returns the raw scores.")
