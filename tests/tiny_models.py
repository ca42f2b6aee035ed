"""Build tiny token-classification checkpoints (random weights, or briefly trained; tokenizers trained here)."""

from __future__ import annotations

from pathlib import Path

from corpus import varied_sentences

LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
FAMILIES = ("bert", "roberta", "xlmr")
TRAINED = "-trained"  # "bert-trained": a family's model trained briefly (build_checkpoint)
MAX_LENGTH = 128
# The committed export of the bert checkpoint (tests/make_fixtures.py rebuilds it): the fast lane's model.
TINY_BERT = Path(__file__).parent / "fixtures" / "tiny-bert"


def _training_text() -> list[str]:
    return varied_sentences(600, seed=99) + ["the a of and to in is was for on with"] * 5


def build_tokenizer(family: str):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    text = _training_text()
    if family == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, clean_text=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(text, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        tok.decoder = decoders.WordPiece()
    elif family == "roberta":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok.train_from_iterator(
            text,
            trainers.BpeTrainer(vocab_size=500, special_tokens=specials,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
        )
        sep, cls = ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
        tok.post_processor = processors.RobertaProcessing(sep, cls, trim_offsets=True, add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    elif family == "xlmr":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=specials, unk_token="<unk>")
        tok.train_from_iterator(text, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
        )
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    else:
        raise ValueError(family)
    return tok


def build_checkpoint(family: str, out: Path, seed: int = 0) -> Path:
    """Save a tiny random-weight token-classification model and its fast tokenizer to `out`.

    `bert-trained` is the bert model trained for a few steps (train_briefly): the model of the int8 tests.
    """
    import torch
    import transformers as tf

    if family.endswith(TRAINED):
        return train_briefly(build_checkpoint(family.removesuffix(TRAINED), out, seed), seed=seed)
    torch.manual_seed(seed)
    tok = build_tokenizer(family)
    id2label = dict(enumerate(LABELS))
    label2id = {v: k for k, v in id2label.items()}
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  id2label=id2label, label2id=label2id, vocab_size=tok.get_vocab_size())
    if family == "bert":
        hf_tok = tf.BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                      sep_token="[SEP]", mask_token="[MASK]", model_max_length=MAX_LENGTH)
        config = tf.BertConfig(max_position_embeddings=MAX_LENGTH, pad_token_id=hf_tok.pad_token_id, **common)
    else:
        cls = tf.RobertaTokenizerFast if family == "roberta" else tf.XLMRobertaTokenizerFast
        hf_tok = cls(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                     cls_token="<s>", sep_token="</s>", mask_token="<mask>", model_max_length=MAX_LENGTH)
        config_cls = tf.RobertaConfig if family == "roberta" else tf.XLMRobertaConfig
        config = config_cls(max_position_embeddings=MAX_LENGTH + 2, pad_token_id=hf_tok.pad_token_id,
                            bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id, **common)
    model = tf.AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():  # sharper, more varied predictions than the near-uniform default init
        model.classifier.weight.normal_(0, 1.0)
        model.classifier.bias.zero_()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


def _entity_labels(text: str, offsets) -> list[int]:
    """Token labels for a corpus.py sentence: its names, places, organisations and misc found by string match."""
    from corpus import FIRST, LAST, MISC, ORGS, PLACES

    spans = []
    for kind, names in (("PER", FIRST + LAST), ("LOC", PLACES), ("ORG", ORGS), ("MISC", MISC)):
        for name in names:
            start = text.find(name)
            while start >= 0:
                spans.append((start, start + len(name), kind))
                start = text.find(name, start + 1)
    labels = []
    for a, b in offsets:
        if a == b:
            labels.append(-100)
            continue
        hit = next((s for s in spans if s[0] <= a < s[1]), None)
        labels.append(0 if hit is None else LABELS.index(("B-" if a == hit[0] else "I-") + hit[2]))
    return labels


def train_briefly(out: Path, steps: int = 150, seed: int = 0) -> Path:
    """Train the checkpoint in `out` for a few steps on corpus.py's sentences, and save it again.

    A random-weight model has near-ties between labels on a few percent of tokens, so whether its int8 export
    agrees with PyTorch on 98% of them depends on the CPU's int8 kernels and on the vocabulary's tie-breaks; a
    trained model decides with margins, as the models users export do. Int8 tests use this one.
    """
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    tok = tf.AutoTokenizer.from_pretrained(out)
    model = tf.AutoModelForTokenClassification.from_pretrained(out)
    texts = varied_sentences(400, seed=seed + 1)
    enc = tok(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_offsets_mapping=True,
              return_tensors="pt")
    offsets = enc.pop("offset_mapping")
    labels = torch.tensor([_entity_labels(t, o.tolist()) for t, o in zip(texts, offsets, strict=True)])
    labels[enc["attention_mask"] == 0] = -100
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        rows = torch.arange(step * 32, step * 32 + 32) % len(texts)
        loss = model(**{k: v[rows] for k, v in enc.items()}, labels=labels[rows]).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.eval()
    model.save_pretrained(out)
    return out
