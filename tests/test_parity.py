"""fasttag's entities equal transformers' pipeline's on the same model, for three tokenizer families."""

import warnings

import pytest

from corpus import varied_sentences
from fasttag import Tagger

SENTENCES = varied_sentences(300)
STRATEGIES = ["simple", "first", "average", "max"]


def _pipeline(checkpoint, strategy, word_ids=False):
    import transformers as tf

    extra = {"pipeline_class": _word_id_pipeline_class()} if word_ids else {}
    return tf.pipeline("token-classification", model=str(checkpoint), tokenizer=str(checkpoint),
                       aggregation_strategy=strategy, device="cpu", **extra)


def _word_id_pipeline_class():
    """The transformers pipeline with one change: a token continues a word when its word id repeats."""
    from transformers import TokenClassificationPipeline

    class WordIdPipeline(TokenClassificationPipeline):
        def gather_pre_entities(self, sentence, input_ids, scores, offset_mapping, special_tokens_mask,
                                aggregation_strategy, word_ids=None, word_to_chars_map=None):
            pre = super().gather_pre_entities(sentence, input_ids, scores, offset_mapping, special_tokens_mask,
                                              aggregation_strategy, word_ids, word_to_chars_map)
            wids = self.tokenizer(sentence, truncation=True).word_ids()
            kept = [w for w, m in zip(wids, special_tokens_mask, strict=True) if not m]
            prev = None
            for entity, w in zip(pre, kept, strict=True):
                unk = int(input_ids[entity["index"]]) == self.tokenizer.unk_token_id
                entity["is_subword"] = w is not None and w == prev and not unk
                prev = w
            return pre

    return WordIdPipeline


def _compare(ours, theirs):
    """(share of sentences with identical (start, end, label) lists, max score diff on those)."""
    same, max_diff = 0, 0.0
    for o, t in zip(ours, theirs, strict=True):
        a = [(e.start, e.end, e.label) for e in o]
        b = [(e["start"], e["end"], e["entity_group"]) for e in t]
        if a == b:
            same += 1
            for e, f in zip(o, t, strict=True):
                max_diff = max(max_diff, abs(e.score - float(f["score"])))
    return same / len(ours), max_diff


@pytest.fixture(scope="module")
def pipelines(family, checkpoint_factory):
    return {s: _pipeline(checkpoint_factory(family), s) for s in STRATEGIES}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_pipeline_exactly(family, strategy, export_factory, checkpoint_factory, pipelines):
    # The pipeline's own word rule (its "##" test for WordPiece, its space heuristic otherwise).
    tagger = Tagger.load(export_factory(family), aggregation=strategy, word_boundaries="pipeline")
    ours = tagger.tag(SENTENCES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = pipelines[strategy](SENTENCES)
    n_entities = sum(map(len, ours))
    assert n_entities > len(SENTENCES)  # the tiny models do predict entities: the comparison is not vacuous
    share, max_diff = _compare(ours, theirs)
    print(f"{family}/{strategy}: identical {share:.2%}, max score diff {max_diff:.2e}, {n_entities} entities")
    assert share == 1.0
    assert max_diff <= 1e-4


@pytest.mark.parametrize("strategy", ["first", "average", "max"])
def test_tokenizer_word_ids(family, strategy, export_factory, checkpoint_factory, pipelines):
    """--word-boundaries tokenizer: the tokenizer's word ids (WordPiece keeps the pipeline's own "##" rule).

    The reference is the pipeline with only its word rule replaced; the share identical to the
    unmodified pipeline is printed (a deliberate difference for BPE and Unigram, see README).
    """
    ours = Tagger.load(export_factory(family), aggregation=strategy, word_boundaries="tokenizer").tag(SENTENCES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = pipelines[strategy](SENTENCES)
        reference = plain if family == "bert" else _pipeline(checkpoint_factory(family), strategy,
                                                             word_ids=True)(SENTENCES)
    share, max_diff = _compare(ours, reference)
    plain_share, _ = _compare(ours, plain)
    print(f"{family}/{strategy} word ids: identical to reference {share:.2%}, to the plain pipeline {plain_share:.2%}")
    assert share == 1.0
    assert max_diff <= 1e-4


def test_tokens_level_is_the_pipelines_none_strategy(family, export_factory, checkpoint_factory):
    """--aggregation none (--level tokens): every sub-token not tagged O, as aggregation_strategy="none" gives
    it: the full label, score, start, end, index in the model input and the vocabulary token ("word")."""
    ours = Tagger.load(export_factory(family), aggregation="none").tag(SENTENCES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _pipeline(checkpoint_factory(family), "none")(SENTENCES)
    same, max_diff, n_tokens = 0, 0.0, sum(map(len, ours))
    for o, t in zip(ours, theirs, strict=True):
        a = [(x.start, x.end, x.label, x.index, x.token) for x in o]
        b = [(x["start"], x["end"], x["entity"], x["index"], x["word"]) for x in t]
        if a == b:
            same += 1
            max_diff = max([max_diff] + [abs(x.score - float(y["score"])) for x, y in zip(o, t, strict=True)])
    print(f"{family}/none: identical {same / len(SENTENCES):.2%}, max score diff {max_diff:.2e}, {n_tokens} tokens")
    assert n_tokens > len(SENTENCES)
    assert same == len(SENTENCES)
    assert max_diff <= 1e-4
