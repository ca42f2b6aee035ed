"""A small RoBERTa-style encoder (byte-level BPE, random weights) to train on CoNLL-2003 for the aggregation study.

The tokenizer is trained on the CoNLL-2003 training words (../shared/data, never committed); the model is
initialised at random and saved as a transformers folder that `fasttag train --model` fine-tunes:

    python bench/tiny_roberta.py runs/tiny-roberta-init
    fasttag train --model runs/tiny-roberta-init --train ../shared/data/conll2003/train.txt \\
        --validation ../shared/data/conll2003/valid.txt --output-dir runs/tiny-roberta --epochs 4 --lr 5e-4 ...

It shows how the aggregation strategies and word rules behave for a second tokenizer family (a
byte-level BPE tokenizer marks word starts with a space, not continuations with "##").
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import DATA  # noqa: E402


def main(out: str) -> None:
    import torch
    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    train = DATA / "conll2003" / "train.txt"
    sentences, words = [], []
    for line in train.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if words:
                sentences.append(" ".join(words))
                words = []
            continue
        words.append(line.split()[0])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(sentences, trainers.BpeTrainer(
        vocab_size=8000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                      ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=True, add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    hf_tok = tf.RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                     pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
                                     model_max_length=512)
    torch.manual_seed(0)
    config = tf.RobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=192, num_hidden_layers=4,
                              num_attention_heads=4, intermediate_size=768, max_position_embeddings=514,
                              pad_token_id=hf_tok.pad_token_id, bos_token_id=hf_tok.bos_token_id,
                              eos_token_id=hf_tok.eos_token_id)
    model = tf.RobertaModel(config)
    Path(out).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"saved {out}: {n_params / 1e6:.1f}M parameters, vocab {tok.get_vocab_size()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/tiny-roberta-init")
