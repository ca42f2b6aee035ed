"""`fasttag train --context N`: sentences of a document packed into training windows (no torch needed)."""

from fasttag.labelled import make_labelled
from fasttag.train import pack_context


class WordTokenizer:
    """Stands in for a transformers tokenizer: each word is as many sub-tokens as it has characters."""

    def __call__(self, sentences, is_split_into_words, add_special_tokens):
        assert is_split_into_words and not add_special_tokens
        return {"input_ids": [[0] * sum(len(w) for w in words) for words in sentences]}

    def num_special_tokens_to_add(self):
        return 2


def _data(n, documents):
    tokens = [[f"w{i}", "xx"] for i in range(n)]  # 4-5 sub-tokens each
    tags = [["B-PER", "O"] for _ in range(n)]
    data = make_labelled(tokens, tags, "mem")
    data.documents = documents
    return data


def test_windows_keep_every_sentence_in_order_within_budget_and_document():
    n = 300
    documents = [i // 100 for i in range(n)]  # three documents of 100 sentences
    data = _data(n, documents)
    packed, windows = pack_context(WordTokenizer(), data, context=64, seed=1)
    assert windows == len(packed) and 3 <= windows < n
    flat = [w for words in packed.tokens for w in words]
    assert flat == [w for words in data.tokens for w in words]  # nothing lost, nothing reordered
    assert [t for tags in packed.tags for t in tags] == [t for tags in data.tags for t in tags]
    room = 64 - 2
    sizes = []
    start = 0
    for words in packed.tokens:
        sizes.append(sum(len(w) for w in words))
        k = len(words) // 2
        assert len({documents[start + j] for j in range(k)}) == 1  # never across documents
        start += k
    assert max(sizes) <= room
    assert min(sizes) < 36 and max(sizes) > 50  # short and long windows both (budgets from 32 to 62)


def test_one_sentence_longer_than_the_window_is_its_own_window():
    data = make_labelled([["a" * 100], ["b"], ["c"]], [["O"], ["O"], ["O"]], "mem")
    packed, windows = pack_context(WordTokenizer(), data, context=32, seed=0)
    assert packed.tokens[0] == ["a" * 100]
    assert [w for ws in packed.tokens for w in ws] == ["a" * 100, "b", "c"]
