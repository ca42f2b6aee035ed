"""Tokenize documents with character offsets and cut them into overlapping model windows."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders

from fasttag.errors import ModelError, UsageError
from fasttag.options import WINDOW_CUTS, WORD_BOUNDARIES, WindowCuts, WordBoundaries

# Code points that separate whitespace words (str.isspace() in the ASCII and Latin-1 ranges, and the
# common Unicode spaces).
_SPACES = np.array([9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                    0x2028, 0x2029, 0x202F, 0x205F, 0x3000], dtype=np.uint32)
# Sub-word markers stripped from vocabulary entries before asking whether a token is punctuation.
_MARKERS = ("##", "\u0120", "\u2581")  # WordPiece, byte-level BPE, SentencePiece


@dataclass
class Windows:
    """Model windows over a chunk's flat token arrays (all indices are flat token positions)."""

    doc: np.ndarray  # (W,) document index within the chunk
    start: np.ndarray  # (W,) first content token fed to the model
    end: np.ndarray  # (W,) one past the last content token
    own_start: np.ndarray  # (W,) first token whose prediction this window supplies
    own_end: np.ndarray  # (W,) one past the last such token

    def __len__(self) -> int:
        return len(self.doc)


@dataclass
class TokenizedChunk:
    """A chunk of documents as flat token arrays; document d owns tokens doc_offsets[d]:doc_offsets[d+1]."""

    texts: list[str]
    doc_offsets: np.ndarray  # (D+1,)
    ids: np.ndarray  # (T,) int64, content tokens only (no template special tokens)
    offsets: np.ndarray  # (T, 2) int64 character offsets into the document
    skip: np.ndarray  # (T,) bool: special tokens inside the text, fed to the model but never tagged
    is_subword: np.ndarray  # (T,) bool: continues the previous token's word
    windows: Windows
    repaired: int = 0  # texts whose lone surrogates were replaced by U+FFFD (one for one: offsets hold)
    # (T,) bool, whitespace words only: the token is in its word's trailing punctuation (or 's), which
    # the decoder splits off as a word of its own unless the model tags it inside the entity.
    trailing: np.ndarray | None = None
    # Pre-tokenized input (`DocumentTokenizer.pretokenized`): (T,) each token's word in its row (-1: none), and
    # (D+1,) each row's first word in the chunk's flat word index.
    word_ids: np.ndarray | None = None
    word_offsets: np.ndarray | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.doc_offsets[-1])


class DocumentTokenizer:
    """Wraps a `tokenizers.Tokenizer` (tokenizer.json) and cuts documents into windows of the model's length."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_length: int,
        stride: int,
        word_boundaries: WordBoundaries = "tokenizer",
        pad_id: int | None = None,
        unk_token: str | None = None,
        windows: WindowCuts = "even",
    ):
        if windows not in WINDOW_CUTS:
            raise UsageError(f"--windows must be one of {', '.join(WINDOW_CUTS)}")
        if word_boundaries not in WORD_BOUNDARIES:
            raise UsageError(f"word boundaries must be one of {', '.join(WORD_BOUNDARIES)}")
        self.pad_id = _pad_id(tokenizer) if pad_id is None else int(pad_id)
        self.unk_id = _unk_id(tokenizer, unk_token)
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.word_boundaries = word_boundaries
        template = tokenizer.encode("a", add_special_tokens=True)
        mask = template.special_tokens_mask
        content = [i for i, m in enumerate(mask) if not m]
        if not content:
            raise ModelError("the tokenizer produced no content token for the text 'a'")
        self.prefix_ids = np.asarray(template.ids[: content[0]], dtype=np.int64)
        self.suffix_ids = np.asarray(template.ids[content[-1] + 1 :], dtype=np.int64)
        self.n_special = len(self.prefix_ids) + len(self.suffix_ids)
        self.max_length = int(max_length)
        self.window_tokens = self.max_length - self.n_special
        if self.window_tokens < 2:
            raise UsageError(f"max length {max_length} leaves no room for text after {self.n_special} special tokens")
        if not 0 <= stride < self.window_tokens:
            raise UsageError(
                f"stride {stride} must be at least 0 and less than the window's {self.window_tokens} text tokens "
                f"(max length {max_length} minus {self.n_special} special tokens)"
            )
        self.stride = int(stride)
        self.windows = windows  # full, even or sentences: see EngineOptions.windows
        self.subword_prefix = getattr(tokenizer.model, "continuing_subword_prefix", None)
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        size = max(vocab.values()) + 1 if vocab else 1
        self.token_lengths = np.zeros(size, dtype=np.int64)
        self.punct_token = np.zeros(size, dtype=bool)  # only punctuation or symbols, markers aside
        self.s_token = np.zeros(size, dtype=bool)  # "s", as in "'s"
        self.apostrophe_token = np.zeros(size, dtype=bool)
        self.period_token = np.zeros(size, dtype=bool)
        self.letter_token = np.zeros(size, dtype=bool)  # a single letter, as in "U.S." or "L."
        self.final_token = np.zeros(size, dtype=bool)  # ends a sentence: . ! ? (or a run of them)
        markers = _MARKERS
        # byte-level BPE (RoBERTa, GPT-2) spells each byte as a character: "“" is "âĢľ" in its vocabulary
        byte_level = isinstance(tokenizer.decoder, decoders.ByteLevel)
        for token, idx in vocab.items():
            self.token_lengths[idx] = len(token)
            bare = _byte_level_text(token) if byte_level else token
            for m in markers:
                if bare.startswith(m):
                    bare = bare[len(m):]
            self.punct_token[idx] = bool(bare) and not any(ch.isalnum() or ch.isspace() for ch in bare)
            self.s_token[idx] = bare in ("s", "S")
            self.apostrophe_token[idx] = bare in ("'", "\u2019")
            self.period_token[idx] = bare == "."
            self.letter_token[idx] = len(bare) == 1 and bare.isalpha()
            self.final_token[idx] = bool(bare) and all(ch in ".!?\u2026" for ch in bare)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> DocumentTokenizer:
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelError(f"cannot load tokenizer {path}: {exc}") from exc
        return cls(tok, **kwargs)

    def __call__(self, texts: list[str], word_level: bool = False) -> TokenizedChunk:
        """Tokenize `texts`; `word_level` also computes word boundaries (for first/average/max)."""
        repaired = 0
        try:
            encs = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        except TypeError:  # a lone surrogate cannot be UTF-8 encoded; repair only the texts that have one
            texts, repaired = repair_surrogates(texts)
            encs = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        return self._chunk(texts, encs, repaired, word_level)[0]

    def words(self, sentences: Sequence[Sequence[str]]) -> tuple[TokenizedChunk, np.ndarray]:
        """Pre-split sentences tokenized word by word, as training tokenizes them (`is_split_into_words`).

        Returns the chunk (texts: the words joined by single spaces; offsets index those texts) and each
        content token's word index in its sentence (-1 for none), so that "the word's first sub-token"
        means the same token as in training, also where a word starts with a bare space marker.
        """
        sentences = [repair_surrogates(list(words))[0] for words in sentences]
        encs = self.tokenizer.encode_batch(sentences, is_pretokenized=True, add_special_tokens=True)
        texts = [" ".join(words) for words in sentences]
        chunk, keep, word_ids = self._chunk(texts, encs, 0, False, sentences)
        return chunk, word_ids[keep]

    def pretokenized(self, sentences: Sequence[Sequence[str]]) -> TokenizedChunk:
        """Token lists given by the user (`--tokens-column`), each token a word: the chunk as `words` makes it,
        with `word_ids` (each content token's word, -1 for none) and `word_offsets` (each row's first word in
        the chunk's flat word index); `is_subword` marks the tokens that continue their word."""
        chunk, word_ids = self.words(sentences)
        chunk.word_ids = word_ids
        chunk.word_offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences)),
                  out=chunk.word_offsets[1:])
        prev = np.full(len(word_ids), -2, dtype=np.int64)
        prev[1:] = word_ids[:-1]
        sub = (word_ids == prev) & (word_ids >= 0)
        sub[chunk.doc_offsets[:-1][chunk.doc_offsets[:-1] < chunk.doc_offsets[1:]]] = False
        chunk.is_subword = sub
        return chunk

    def _chunk(self, texts, encs, repaired: int, word_level: bool, sentences=None):
        lens = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        total = int(lens.sum())
        ids = np.fromiter(chain.from_iterable(e.ids for e in encs), dtype=np.int64, count=total)
        special = np.fromiter(chain.from_iterable(e.special_tokens_mask for e in encs), dtype=bool, count=total)
        offsets = np.fromiter(
            chain.from_iterable(chain.from_iterable(e.offsets for e in encs)), dtype=np.int64, count=2 * total
        ).reshape(-1, 2)
        enc_word_ids = None
        if sentences is not None:
            # pre-split words: offsets are relative to each word; move them into the space-joined text
            enc_word_ids = np.fromiter(
                (-1 if w is None else w for w in chain.from_iterable(e.word_ids for e in encs)), dtype=np.int64,
                count=total,
            )
            word_starts = [np.cumsum([0] + [len(w) + 1 for w in words[:-1]])[: len(words)] for words in sentences]
            flat_starts = np.concatenate([np.asarray(x, dtype=np.int64) for x in word_starts] + [np.zeros(1, np.int64)])
            first_word = np.concatenate([[0], np.cumsum([len(w) for w in sentences])]).astype(np.int64)
            doc = np.repeat(np.arange(len(encs), dtype=np.int64), lens)
            has = enc_word_ids >= 0
            shift = np.where(has, flat_starts[np.where(has, first_word[doc] + enc_word_ids, len(flat_starts) - 1)], 0)
            offsets = offsets + shift[:, None]
        # Drop the template's special tokens ([CLS] ... [SEP]); windows add them back.
        n_content = lens - self.n_special
        doc_offsets = np.zeros(len(encs) + 1, dtype=np.int64)
        np.cumsum(n_content, out=doc_offsets[1:])
        keep = np.ones(total, dtype=bool)
        enc_start = (np.cumsum(lens) - lens).astype(np.int64)
        for k in range(len(self.prefix_ids)):
            keep[enc_start + k] = False
        for k in range(1, len(self.suffix_ids) + 1):
            keep[enc_start + lens - k] = False
        ids, special, offsets = ids[keep], special[keep], offsets[keep]
        is_subword = np.zeros(len(ids), dtype=bool)
        trailing = None
        # Some tokenizers put the space before a word into its first token's span (SentencePiece's Metaspace as
        # transformers converts XLM-R and DeBERTa-v3 now, byte-level BPE without trim_offsets): "▁Lovelace" at
        # (3, 12) in "Ada Lovelace". fasttag's own word and sentence rules read the spans without that space.
        sentences = self.windows == "sentences" and (np.diff(doc_offsets) > self.window_tokens).any()
        trimmed = _without_leading_spaces(texts, doc_offsets, offsets) if (
            word_level and self.word_boundaries == "whitespace") or sentences else offsets
        if word_level and self.word_boundaries == "whitespace":
            offsets = trimmed  # entity and word spans too: " Lovelace" is no word
            is_subword, trailing, blank = self._whitespace_words(texts, doc_offsets, ids, offsets)
            special = special | blank
        elif word_level:
            word_ids = None
            if self.word_boundaries == "tokenizer" and not self.subword_prefix:
                word_ids = np.fromiter(
                    (-1 if w is None else w for w in chain.from_iterable(e.word_ids for e in encs)),
                    dtype=np.int64,
                    count=total,
                )[keep]
            is_subword = self._is_subword(texts, doc_offsets, ids, offsets, word_ids)
        breaks = None
        if sentences:
            breaks = self._sentence_starts(texts, doc_offsets, ids, trimmed)
        windows = self._windows(doc_offsets, breaks)
        chunk = TokenizedChunk(texts, doc_offsets, ids, offsets, special, is_subword, windows, repaired, trailing)
        return chunk, keep, enc_word_ids

    def _whitespace_words(self, texts, doc_offsets, ids, offsets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Words delimited by whitespace, with their leading punctuation split off.

        Returns is_subword, `trailing`: the tokens of each word's trailing punctuation run (a final
        "'s" counts as punctuation), which `decode_spans` splits off only where the model tags them
        outside the entity, so that "London." gives "London" but "U.S." stays whole; and `blank`: tokens
        of no extent that are no part of a word (a space of its own between two words, its span emptied by
        `_without_leading_spaces`), never tagged.
        """
        n = len(ids)
        sub = np.zeros(n, dtype=bool)
        trailing = np.zeros(n, dtype=bool)
        if n == 0:
            return sub, trailing, np.zeros(n, dtype=bool)
        first_in_doc = np.zeros(n, dtype=bool)
        first_in_doc[doc_offsets[:-1][doc_offsets[:-1] < doc_offsets[1:]]] = True
        before, at = _chars_around(texts, doc_offsets, offsets)
        # a token starts a word after a space, or when a gap (dropped characters) separates it
        starts = offsets[:, 0]
        gap = np.ones(n, dtype=bool)
        gap[1:] = starts[1:] > offsets[:-1, 1]
        ws_start = first_in_doc | ((starts > 0) & gap & np.isin(before, _SPACES))
        safe = np.minimum(ids, len(self.punct_token) - 1)
        punct = self.punct_token[safe] & (ids != self.unk_id)
        # a token that spans one character of punctuation or a symbol, whatever its vocabulary entry: the unknown
        # token for a "«" that a vocabulary lacks, or one of the byte tokens a byte-level BPE spells a "“" with
        one = np.flatnonzero(offsets[:, 1] - offsets[:, 0] == 1)
        if len(one):
            seen, which = np.unique(at[one], return_inverse=True)
            marks = np.fromiter((unicodedata.category(chr(c))[0] in "PS" for c in seen), dtype=bool, count=len(seen))
            punct[one] |= marks[which]
        # a final "'s": the "s" after an apostrophe, last in its word
        last_in_word = np.ones(n, dtype=bool)
        last_in_word[:-1] = ws_start[1:]
        prev_apos = np.zeros(n, dtype=bool)
        prev_apos[1:] = self.apostrophe_token[safe[:-1]] & ~ws_start[1:]
        # (a token of no extent, the space before a word in its own token, is no part of the word's core either)
        edge = punct | (self.s_token[safe] & prev_apos & last_in_word) | (offsets[:, 0] == offsets[:, 1])
        # the period of an initial or acronym ("L.", "U.S.", "(J.") belongs to the word: right after a single letter
        # that begins its run of letters (the word's start, or after a character neither letter nor digit), not
        # after a word's last piece that happens to be one letter ("Macron." is "macro", "##n", ".")
        after_letter = np.zeros(n, dtype=bool)
        after_letter[1:] = self.letter_token[safe[:-1]] & ~ws_start[1:]
        letter = np.flatnonzero(after_letter) - 1
        if len(letter):
            seen, which = np.unique(before[letter], return_inverse=True)
            alnum = np.fromiter((chr(c).isalnum() for c in seen), dtype=bool, count=len(seen))
            after_letter[letter + 1] = ws_start[letter] | ~alnum[which]
        edge &= ~(self.period_token[safe] & after_letter)
        word = np.cumsum(ws_start) - 1
        starts_at = np.flatnonzero(ws_start)
        idx = np.arange(n, dtype=np.int64)
        # the word's core: from its first to its last token that is not edge punctuation
        core_first = np.minimum.reduceat(np.where(edge, n, idx), starts_at)[word]
        core_last = np.maximum.reduceat(np.where(edge, -1, idx), starts_at)[word]
        has_core = core_last >= 0
        sub = ~ws_start
        # leading punctuation is a word of its own (a token of no extent before the core alone is not)
        after_punct = np.zeros(n, dtype=bool)
        after_punct[1:] = edge[:-1] & (offsets[:-1, 0] < offsets[:-1, 1]) & ~ws_start[1:]
        sub[(idx == core_first) & has_core & after_punct] = False
        trailing = has_core & (idx > core_last)
        next_starts = np.ones(n, dtype=bool)
        next_starts[:-1] = ws_start[1:]
        blank = ws_start & next_starts & (offsets[:, 0] == offsets[:, 1])
        return sub, trailing, blank

    def _is_subword(self, texts, doc_offsets, ids, offsets, word_ids) -> np.ndarray:
        if word_ids is not None:
            prev = np.empty_like(word_ids)
            prev[1:] = word_ids[:-1]
            prev[0] = -2
            sub = (word_ids == prev) & (word_ids >= 0)
        elif self.subword_prefix:
            # transformers' rule for word-aware tokenizers: a continuation token's text differs from its source span.
            safe = np.minimum(ids, len(self.token_lengths) - 1)
            sub = self.token_lengths[safe] != (offsets[:, 1] - offsets[:, 0])
        else:
            # transformers' fallback heuristic: the token starts right after a non-space and is not a space itself.
            # `" " not in text[start - 1 : start + 1]`, on code points
            before, at = _chars_around(texts, doc_offsets, offsets)
            sub = (offsets[:, 0] > 0) & (before != 32) & (at != 32)
        sub &= ids != self.unk_id
        sub[doc_offsets[:-1][doc_offsets[:-1] < doc_offsets[1:]]] = False
        return sub

    def _sentence_starts(self, texts, doc_offsets, ids, offsets) -> np.ndarray:
        """Flat positions of the tokens that begin a sentence: after a token of sentence-final punctuation
        (. ! ?), across whitespace, at an upper-case letter, a digit or an opening quote or bracket; not after
        the period of an initial ("J. Smith", "U.S. Army"). A window cut there splits no sentence."""
        n = len(ids)
        if n < 2:
            return np.zeros(0, dtype=np.int64)
        safe = np.minimum(ids, len(self.final_token) - 1)
        cand = np.zeros(n, dtype=bool)
        cand[1:] = self.final_token[safe[:-1]] & (offsets[1:, 0] > offsets[:-1, 1])
        cand[doc_offsets[:-1][doc_offsets[:-1] < doc_offsets[1:]]] = False
        at = np.flatnonzero(cand)  # never 0: cand[0] stays False
        if len(at) == 0:
            return at.astype(np.int64)
        before, first = _chars_around(texts, doc_offsets, offsets)
        ok = np.isin(before[at], _SPACES)
        ok &= np.fromiter((chr(c).isupper() or chr(c).isdigit() or chr(c) in "\"'(\u201c\u2018[" for c in first[at]),
                          dtype=bool, count=len(at))
        # an initial's period ("J. Smith", "U.S. Army"): a single letter that begins its word (after a space, a
        # period or the text's start) right before the period
        letter = at - 2
        has_letter = letter >= doc_offsets[np.searchsorted(doc_offsets, at, side="right") - 1]
        letter = np.maximum(letter, 0)
        initial = (has_letter & self.letter_token[safe[letter]] & (offsets[letter, 1] == offsets[at - 1, 0])
                   & ((offsets[letter, 0] == 0) | np.isin(before[letter], _SPACES) | (before[letter] == 46)))
        ok &= ~initial
        return at[ok].astype(np.int64)

    def _windows(self, doc_offsets: np.ndarray, breaks: np.ndarray | None = None) -> Windows:
        n = np.diff(doc_offsets)
        L = self.window_tokens
        single = np.flatnonzero((n > 0) & (n <= L))
        docs = [single]
        starts = [doc_offsets[single]]
        ends = [doc_offsets[single + 1]]
        own_starts, own_ends = [starts[0]], [ends[0]]
        step = L - self.stride
        for d in np.flatnonzero(n > L):
            base, size = int(doc_offsets[d]), int(n[d])
            if breaks is not None:
                s, e = self._packed(breaks[(breaks > base) & (breaks < base + size)] - base, size)
            elif self.windows == "even":
                # as few windows as overlap by the stride, all of one width (at most L): none longer than the
                # document needs
                k = -(-(size - self.stride) // step)
                width = -(-(size + (k - 1) * self.stride) // k)
                s = np.minimum(np.arange(k, dtype=np.int64) * (width - self.stride), size - width)
                e = s + width
            else:  # full windows overlapping by the stride, the last one ending at the document's end
                s = np.arange(0, size - L, step, dtype=np.int64)
                s = np.append(s, size - L)
                e = s + L
            # Each token takes its prediction from the window whose centre is nearest (where it is most
            # central): the middle of the overlap; where windows meet without one, the boundary.
            cut = (s[1:] + e[:-1] - 1) // 2 + 1
            docs.append(np.full(len(s), d, dtype=np.int64))
            starts.append(base + s)
            ends.append(base + e)
            own_starts.append(base + np.concatenate([[0], cut]))
            own_ends.append(base + np.concatenate([cut, [size]]))
        cat = lambda xs: np.concatenate(xs).astype(np.int64)  # noqa: E731
        w = Windows(cat(docs), cat(starts), cat(ends), cat(own_starts), cat(own_ends))
        order = np.lexsort((w.start, w.doc))
        return Windows(w.doc[order], w.start[order], w.end[order], w.own_start[order], w.own_end[order])

    def _packed(self, breaks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows of one document of `size` tokens, whole sentences packed into each: a window ends at the last
        sentence start (`breaks`, sorted, relative to the document) that leaves it at least half full, and the
        next begins there, without overlap. Where no sentence start is in reach (a sentence longer than half a
        window), the window is full and the next overlaps it by the stride, as without packing."""
        L, starts, ends, pos = self.window_tokens, [], [], 0
        while size - pos > L:
            end = pos + L
            k = int(np.searchsorted(breaks, end, side="right")) - 1
            if k >= 0 and breaks[k] >= pos + L // 2:
                starts.append(pos)
                ends.append(int(breaks[k]))
                pos = int(breaks[k])
            else:
                starts.append(pos)
                ends.append(end)
                pos = end - self.stride
        starts.append(pos)
        ends.append(size)
        return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """The byte each character of a byte-level BPE vocabulary stands for (GPT-2's bytes_to_unicode, inverted):
    printable Latin-1 bytes as themselves, the others as the code points from 256 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
                 *range(ord("\u00ae"), ord("\u00ff") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def _byte_level_text(token: str) -> str:
    """A byte-level vocabulary entry as the text it stands for ("Ġ" a space); bytes of a character the entry
    holds only part of are left out. An entry that is not byte-level spelling (an added token) stays as it is."""
    rest = token[1:] if token.startswith("\u0120") else token  # the space before a word, most entries
    if rest.isascii():  # printable ASCII stands for itself
        return rest
    table = _byte_decoder()
    if not all(ch in table for ch in token):
        return token
    return bytes(table[ch] for ch in token).decode("utf-8", errors="ignore").lstrip()


def _without_leading_spaces(texts: list[str], doc_offsets: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """`offsets` with each token's start moved past the whitespace its span begins with (a span of only
    whitespace becomes empty, at its end); `offsets` itself when no span begins with whitespace."""
    out = offsets
    while True:
        _, at = _chars_around(texts, doc_offsets, out)
        move = np.isin(at, _SPACES) & (out[:, 0] < out[:, 1])
        if not move.any():
            return out
        if out is offsets:
            out = offsets.copy()
        out[move, 0] += 1


def _chars_around(texts: list[str], doc_offsets: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per token, the code point just before its start and the one at its start (0 past a text's end).

    At a text's first character, "before" is that character itself (what a word start looks like). All texts are
    read from one UTF-32 buffer, whatever their number (a Python loop per text took about 40% of `tokenize`)."""
    texts = [t or "" for t in texts]
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    first = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=first[1:])
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if not cps.size:
        return np.zeros(len(offsets), dtype=np.uint32), np.zeros(len(offsets), dtype=np.uint32)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(doc_offsets))
    size = lengths[doc]
    starts = offsets[:, 0]
    last = np.maximum(size - 1, 0)
    where = first[doc]
    has = size > 0
    before = np.where(has, cps[np.where(has, where + np.clip(starts - 1, 0, last), 0)], 0).astype(np.uint32)
    at = np.where(has & (starts < size), cps[np.where(has, where + np.clip(starts, 0, last), 0)], 0).astype(np.uint32)
    return before, at


def repair_surrogates(texts: list[str]) -> tuple[list[str], int]:
    """Texts with each lone surrogate replaced by U+FFFD (one for one, so offsets hold), and how many changed."""
    out, n = [], 0
    for t in texts:
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            t = t.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            n += 1
        out.append(t)
    return out, n


def _pad_id(tok: Tokenizer) -> int:
    if tok.padding and tok.padding.get("pad_id") is not None:
        return int(tok.padding["pad_id"])
    for candidate in ("[PAD]", "<pad>", "<PAD>"):
        idx = tok.token_to_id(candidate)
        if idx is not None:
            return idx
    return 0


def _unk_id(tok: Tokenizer, unk_token: str | None) -> int:
    unk = unk_token or getattr(tok.model, "unk_token", None)
    if unk is not None:
        idx = tok.token_to_id(unk)
        if idx is not None:
            return idx
    unk_id = getattr(tok.model, "unk_id", None)
    return int(unk_id) if unk_id is not None else -1
