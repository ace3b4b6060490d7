"""GliZNetTokenizer invariants on the packaged MiniLM (WordPiece) and an offline-trained byte-level BPE."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.modeling.backbone import default_backbone_path  # noqa: E402
from gliznet.modeling.tokenizer import LAB_TOKEN, GliZNetTokenizer  # noqa: E402

TEXT = "the striker scored twice in the second half and the crowd went wild"
LABELS = ["sports", "football match report", "cooking", "politics and government"]


@pytest.fixture(scope="module")
def wordpiece():
    return GliZNetTokenizer.from_pretrained(default_backbone_path())


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    sentences = [TEXT, *LABELS, "a byte level tokenizer trained on a handful of sentences",
                 "football is played on grass; cooking happens in kitchens", "governments pass laws"] * 5
    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(sentences, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "</s>", "<pad>", "<unk>"])
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    raw.save(str(path))
    hf = PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<s>", eos_token="</s>",
                                 pad_token="<pad>", unk_token="<unk>")
    return GliZNetTokenizer(hf)


@pytest.fixture(params=["wordpiece", "bpe"])
def tok(request):
    return request.getfixturevalue(request.param)


def test_layout_is_cls_text_sep_labels_each_closed_by_lab_then_sep(tok):
    enc = tok([TEXT], [LABELS], return_tensors=None)
    ids = enc["input_ids"][0]
    text_ids = tok.encode_pieces([TEXT])[0]
    label_ids = tok.encode_pieces(LABELS)
    expected = [tok.start_id, *text_ids, tok.end_id]
    for piece in label_ids:
        expected += [*piece, tok.lab_token_id]
    expected.append(tok.end_id)
    assert ids == expected
    assert tok.hf.convert_ids_to_tokens(tok.lab_token_id) == LAB_TOKEN


def test_wrapped_layout_opens_each_label_with_lab_and_closes_it_with_sep(tok):
    enc = tok([TEXT], [LABELS], label_layout="wrap", return_tensors=None)
    ids, mask = enc["input_ids"][0], enc["label_mask"][0]
    expected, expected_mask = [tok.start_id, *tok.encode_pieces([TEXT])[0], tok.end_id], []
    expected_mask = [0] * len(expected)
    for k, piece in enumerate(tok.encode_pieces(LABELS), start=1):
        expected += [tok.lab_token_id, *piece, tok.end_id]
        expected_mask += [0, *[k] * len(piece), 0]
    assert ids == [*expected, tok.end_id] and mask == [*expected_mask, 0]


def test_wrapped_labels_cost_two_tokens_each_and_truncate_whole(tok):
    labels = [f"label number {i} about topic {i}" for i in range(30)]
    close = tok([TEXT], [labels], max_length=64, min_text_tokens=8, return_tensors=None)
    wrap = tok([TEXT], [labels], max_length=64, min_text_tokens=8, label_layout="wrap", return_tensors=None)
    pieces = tok.encode_pieces(labels)
    kept, dropped, ids = wrap["kept_labels"][0], wrap["dropped_labels"][0], wrap["input_ids"][0]
    text_tokens = len(close["input_ids"][0]) - 3 - sum(len(pieces[i]) + 1 for i in close["kept_labels"][0])
    assert len(ids) == 3 + text_tokens + sum(len(pieces[i]) + 2 for i in kept) <= 64  # same text, 2 per label
    assert 0 < len(kept) and len(pieces[dropped[0]]) + 2 > 64 - len(ids)  # the first left out did not fit
    for k, index in enumerate(wrap["kept_labels"][0], start=1):
        assert [i for i, m in zip(wrap["input_ids"][0], wrap["label_mask"][0]) if m == k] == pieces[index]
    with pytest.raises(Exception, match="label_layout='open' is not supported"):
        tok([TEXT], [labels], label_layout="open")


def test_label_mask_marks_exactly_the_tokens_of_each_label(tok):
    enc = tok([TEXT, "short one"], [LABELS, LABELS[:2]], return_tensors=None)
    for row, labels in enumerate([LABELS, LABELS[:2]]):
        ids, mask = enc["input_ids"][row], enc["label_mask"][row]
        for k, piece in enumerate(tok.encode_pieces(labels), start=1):
            assert [i for i, m in zip(ids, mask) if m == k] == piece
        assert max(mask) == len(labels)
        # label tokens are never special tokens, and every [LAB] follows the last token of a label
        for pos, token in enumerate(ids):
            if token == tok.lab_token_id:
                assert mask[pos] == 0 and mask[pos - 1] > 0


def test_padding_and_attention_mask_agree(wordpiece):
    enc = wordpiece([TEXT, "hi"], [LABELS, ["a"]])
    assert enc["input_ids"].shape == enc["attention_mask"].shape == enc["label_mask"].shape
    lengths = enc["attention_mask"].sum(1).tolist()
    assert lengths[0] > lengths[1]
    assert (enc["label_mask"][1, lengths[1]:] == 0).all()
    assert (enc["input_ids"][1, lengths[1]:] == wordpiece.pad_id).all()


def test_truncation_keeps_whole_labels_and_reports_the_dropped_ones(tok):
    labels = [f"label number {i} about topic {i}" for i in range(30)]
    enc = tok([TEXT], [labels], max_length=64, min_text_tokens=8, return_tensors=None)
    kept, dropped = enc["kept_labels"][0], enc["dropped_labels"][0]
    assert len(enc["input_ids"][0]) <= 64
    assert 0 < len(kept) < len(labels)
    assert sorted(kept + dropped) == list(range(len(labels)))
    pieces = tok.encode_pieces(labels)
    ids, mask = enc["input_ids"][0], enc["label_mask"][0]
    for k, index in enumerate(kept, start=1):  # every kept label is complete
        assert [i for i, m in zip(ids, mask) if m == k] == pieces[index]


def test_text_gets_its_budget_and_labels_fill_the_rest(wordpiece):
    long_text = " ".join(["word"] * 400)
    enc = wordpiece([long_text], [LABELS], max_length=128, text_budget=0.5, min_text_tokens=16, return_tensors=None)
    ids, mask = enc["input_ids"][0], enc["label_mask"][0]
    assert len(ids) == 128  # the labels are short, so the text takes what they leave
    assert enc["dropped_labels"][0] == []
    assert set(range(1, len(LABELS) + 1)) <= set(mask)  # every label kept its tokens
    many = [f"category {i}" for i in range(100)]
    enc = wordpiece([long_text], [many], max_length=128, text_budget=0.5, min_text_tokens=16, return_tensors=None)
    first_label = enc["label_mask"][0].index(1)
    assert first_label - 2 == 64  # [CLS] + 64 text tokens + [SEP]: the text keeps half
    assert enc["dropped_labels"][0]


def test_max_text_tokens_caps_the_text_even_when_the_labels_leave_room(wordpiece):
    long_text = " ".join(["word"] * 400)
    enc = wordpiece([long_text, "a short text"], [LABELS, LABELS], max_length=256, max_text_tokens=40,
                    return_tensors=None)
    first_label = enc["label_mask"][0].index(1)
    assert first_label - 2 == 40  # [CLS] + 40 text tokens + [SEP], though 250 would fit next to the labels
    assert enc["dropped_labels"][0] == []
    short = wordpiece.encode_pieces(["a short text"])[0]
    assert enc["label_mask"][1].index(1) - 2 == len(short)  # a shorter text is untouched
    uncapped = wordpiece([long_text], [LABELS], max_length=256, return_tensors=None)
    assert uncapped["label_mask"][0].index(1) - 2 > 200


@pytest.mark.parametrize("texts, labels, message", [
    (["a text"], [[]], "labels is empty"),
    (["   "], [["x"]], "text is empty"),
    (["a text"], [["x", "y", "x"]], "duplicate labels"),
    (["a", "b"], [["x"]], "one label list per text"),
])
def test_bad_input_gives_clear_errors(wordpiece, texts, labels, message):
    with pytest.raises(ValueError, match=message):
        wordpiece(texts, labels)


def test_save_and_reload_keeps_lab_token(wordpiece, tmp_path):
    wordpiece.save_pretrained(tmp_path)
    again = GliZNetTokenizer.from_pretrained(str(tmp_path))
    assert again.lab_token_id == wordpiece.lab_token_id
    assert again([TEXT], [LABELS])["input_ids"].tolist() == wordpiece([TEXT], [LABELS])["input_ids"].tolist()


def test_unknown_tokenizer_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot load a tokenizer"):
        GliZNetTokenizer.from_pretrained(str(tmp_path / "nope"))
