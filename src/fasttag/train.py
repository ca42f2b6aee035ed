"""Fine-tune a transformer encoder for token classification: the classic HuggingFace recipe.

Words are tokenized with ``is_split_into_words=True``; each word's label sits on its first
sub-token (on every sub-token with ``label_all_tokens``: continuations of a ``B-X`` word take
``I-X``, every other word's continuations its own label); a `Trainer` evaluates and saves every
epoch and keeps the best checkpoint by the task's metric.

The task (`fasttag.schemes.Task`) is the training data's: a *span* task (IOB2, BIOES or BILOU tags)
is scored by entity F1, strictly in its scheme (`fasttag.metrics.entity_scores`, seqeval's strict
mode); a *tag* task (tags without prefixes, such as POS) by word accuracy, with per-tag and macro
precision/recall/F1 beside it (`fasttag.metrics.tag_scores`). The task is saved in the checkpoint's
config.json (``fasttag_task``), from which `fasttag export` records it in the manifest.

The figures reported here are the ones a separate evaluator of the exported model gets: each
word's prediction is read at its first sub-token (also with ``label_all_tokens``, whose evaluation
labels stay first-sub-token only), and a word with no sub-token or past ``max_length`` counts as ``O`` in a span
task, and as wrong (`fasttag.schemes.NO_TAG`, in no tag's row) in a tag task.

torch, transformers and accelerate are imported inside the functions: ``import fasttag.train``
stays cheap, and a missing ``train`` extra is reported as such.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fasttag.errors import InputError, MissingExtraError, ModelError, OutputError, UsageError
from fasttag.labelled import (
    LabelledData,
    TagColumn,
    make_labelled,
    order_labels,
    parse_labels,
    read_labelled,
    tag_column_of,
)
from fasttag.metrics import entity_scores, tag_scores
from fasttag.model import check_source_model, is_within
from fasttag.options import CONVERT_SCHEMES, SCHEMES, ConvertScheme, Scheme
from fasttag.schemes import OUTSIDE, Task, convert, split_label

Log = Callable[[str], None]

IGNORE = -100  # label id the loss skips
# Byte-level BPE tokenizers need a space before each word to tokenize pre-split words as in text.
PREFIX_SPACE_MODELS = {"bart", "bloom", "deberta", "gpt2", "led", "longformer", "mvp", "roberta"}


def require_train_extra() -> None:
    """Raise `MissingExtraError` unless torch, transformers and accelerate import."""
    try:
        import accelerate  # noqa: F401  (the Trainer needs it)
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "torch/transformers"
        raise MissingExtraError("train", "fasttag train", missing) from exc


@dataclass
class Encoded:
    """One split ready for the Trainer, and where each word's first sub-token landed."""

    features: list[dict[str, list[int]]]
    # Per sentence, per word: the index of the word's first sub-token, or -1 when it has none
    # (no sub-tokens at all, or cut off by max_length).
    positions: list[list[int]]
    truncated: int  # sentences that lost words to max_length


def encode(
    tokenizer: Any,
    data: LabelledData,
    label2id: dict[str, int],
    max_length: int,
    *,
    label_all_tokens: bool = False,
    chunk: int = 1000,
) -> Encoded:
    """Tokenize pre-split sentences and align word labels to sub-tokens."""
    continuation = {
        label2id[label]: label2id.get("I-" + label[2:], label2id[label])
        for label in label2id
        if label.startswith("B-")
    }
    features: list[dict[str, list[int]]] = []
    positions: list[list[int]] = []
    truncated = 0
    for start in range(0, len(data), chunk):
        batch = tokenizer(
            data.tokens[start : start + chunk],
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
        )
        for k in range(len(batch["input_ids"])):
            word_ids = batch.word_ids(k)
            tag_ids = [label2id[tag] for tag in data.tags[start + k]]
            labels: list[int] = []
            first = [-1] * len(tag_ids)
            prev = None
            for j, w in enumerate(word_ids):
                if w is None:
                    labels.append(IGNORE)
                elif w != prev:
                    labels.append(tag_ids[w])
                    first[w] = j
                elif label_all_tokens:
                    labels.append(continuation.get(tag_ids[w], tag_ids[w]))
                else:
                    labels.append(IGNORE)
                prev = w
            last_word = max((w for w in word_ids if w is not None), default=-1)
            if len(word_ids) >= max_length and last_word + 1 < len(tag_ids):
                truncated += 1
            feature = {key: batch[key][k] for key in batch.keys()}
            feature["labels"] = labels
            features.append(feature)
            positions.append(first)
    return Encoded(features, positions, truncated)


def pack_context(
    tokenizer: Any, data: LabelledData, context: int, seed: int = 42
) -> tuple[LabelledData, int]:
    """Consecutive sentences of one document packed into training windows of at most ``context`` sub-tokens.

    Each window's budget is drawn log-uniformly between 32 sub-tokens (or ``context`` if less) and
    ``context``, so the model sees single sentences as well as long multi-sentence windows, and so
    tags both kinds of text alike. A sentence never straddles two windows; one longer than its budget
    is a window of its own. Every sentence keeps its labels. Sentences of different documents (by
    ``data.documents``) are never packed together; without document marks consecutive sentences are
    taken as one document. Returns the packed data (one "sentence" per window) and the window count.
    """
    import math
    import random

    rng = random.Random(seed)
    lengths: list[int] = []
    for start in range(0, len(data), 1000):
        batch = tokenizer(data.tokens[start : start + 1000], is_split_into_words=True, add_special_tokens=False)
        lengths.extend(len(ids) for ids in batch["input_ids"])
    room = context - tokenizer.num_special_tokens_to_add()
    low = min(32, room)
    documents = data.documents or [0] * len(data)
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    locations: list[int] = []
    i = 0
    while i < len(data):
        budget = int(math.exp(rng.uniform(math.log(low), math.log(room)))) if room > low else room
        words, word_tags, used, j = list(data.tokens[i]), list(data.tags[i]), lengths[i], i + 1
        while j < len(data) and documents[j] == documents[i] and used + lengths[j] <= budget:
            words += data.tokens[j]
            word_tags += data.tags[j]
            used += lengths[j]
            j += 1
        tokens.append(words)
        tags.append(word_tags)
        locations.append(data.locations[i] if data.locations else i + 1)
        i = j
    packed = LabelledData(tokens, tags, data.source, locations, data.unit, data.scheme, data.repaired, task=data.task)
    return packed, len(tokens)


def first_subtoken_tags(
    pred_ids: Any, positions: Sequence[Sequence[int]], id2label: dict[int, str], missing: str = OUTSIDE
) -> list[list[str]]:
    """Each word's predicted tag, read at its first sub-token; ``missing`` where it has none (`Task.unpredicted`)."""
    tags = []
    for row, first in zip(pred_ids, positions, strict=True):
        row = row.tolist() if hasattr(row, "tolist") else list(row)
        tags.append([id2label[int(row[j])] if j >= 0 else missing for j in first])
    return tags


def flat_scores(scores: dict) -> dict[str, float]:
    """Overall and per-type precision/recall/F1 as one flat dict, for the Trainer's logs."""
    flat = {key: float(scores[key]) for key in ("precision", "recall", "f1")}
    for kind, s in scores["types"].items():
        for key in ("precision", "recall", "f1"):
            flat[f"{kind}_{key}"] = float(s[key])
    return flat


def flat_tag_scores(scores: dict) -> dict[str, float]:
    """A tag task's accuracy, macro P/R/F1 and per-tag F1 as one flat dict, for the Trainer's logs."""
    flat = {key: float(scores[key]) for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1")}
    for tag, s in scores["tags"].items():
        flat[f"{tag}_f1"] = float(s["f1"])
    return flat


def metric_of(task: Task) -> str:
    """The figure the best epoch is chosen by: entity F1 for span tasks, word accuracy for tag tasks."""
    return "accuracy" if task.kind == "tag" else "f1"


def score(task: Task, y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict:
    """The task's scores of predicted word tags: `tag_scores` for tag tasks, strict `entity_scores` in the scheme."""
    if task.kind == "tag":
        return tag_scores(y_true, y_pred)
    return entity_scores(y_true, y_pred, scheme=task.scheme)


def load_hub_dataset(
    name: str,
    *,
    tag_column: TagColumn = None,
    labels: Sequence[str] | None = None,
    scheme: Scheme = "auto",
    convert_to: ConvertScheme | None = None,
) -> dict[str, LabelledData]:
    """The train/validation/test splits of a HuggingFace hub dataset, tags mapped to strings."""
    column = tag_column_of(tag_column, "hub", f"dataset {name!r}")
    assert isinstance(column, str)
    tag_column = column
    try:
        import datasets
    except ImportError as exc:
        raise MissingExtraError("train", "fasttag train --dataset", "datasets") from exc
    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # network, missing dataset, script errors: all one message
        raise InputError(f"cannot load dataset {name!r}: {_one_line(exc)}") from exc
    aliases = {"train": ("train",), "validation": ("validation", "valid", "dev"), "test": ("test",)}
    splits: dict[str, LabelledData] = {}
    for split, names in aliases.items():
        found = next((n for n in names if n in loaded), None)
        if found is None:
            continue
        ds = loaded[found]
        if "tokens" not in ds.column_names or tag_column not in ds.column_names:
            raise InputError(
                f"dataset {name!r} split {found!r} lacks 'tokens' or {tag_column!r} "
                f"(columns: {', '.join(ds.column_names)}); name the tag column with --tag-column"
            )
        feature = ds.features[tag_column]
        names_of = getattr(getattr(feature, "feature", feature), "names", None)
        raw = ds[tag_column]
        if names_of is not None:
            raw = [[names_of[i] for i in sentence] for sentence in raw]
        tokens = ds["tokens"]
        keep = [i for i, words in enumerate(tokens) if words]
        splits[split] = make_labelled(
            [tokens[i] for i in keep],
            [list(raw[i]) for i in keep],
            f"{name}[{found}]",
            labels=labels,
            scheme=scheme,
            convert_to=convert_to,
            locations=[i + 1 for i in keep],
            unit="row",
        )
    if "train" not in splits:
        raise InputError(f"dataset {name!r} has no train split (splits: {', '.join(loaded)})")
    return splits


def load_splits(
    *,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    test_file: str | Path | None = None,
    dataset: str | None = None,
    tag_column: TagColumn = None,
    labels: Sequence[str] | None = None,
    scheme: Scheme = "auto",
    convert_to: ConvertScheme | None = None,
    log: Log = print,
) -> dict[str, LabelledData]:
    """Read the labelled splits from files or a hub dataset (files override its splits).

    Every split must hold the training data's task. With ``scheme="auto"`` each span split's scheme
    is detected on its own, and span tags in another scheme than the training data's are converted
    to it (IOB2 validation data for BIOES training data, as `fasttag eval` converts test data to the
    model's scheme); after tag-task training data the other files are read as a tag task (so a
    prefixed tag is an error at its line). A split of the other kind is an error. Reports through
    ``log`` each file read as IOB1, each IOB2 file with stray ``I-`` tags, each conversion.
    """
    if (train_file is None) == (dataset is None):
        raise UsageError("give either a training file or a dataset name, not both or neither")
    splits = (
        load_hub_dataset(dataset, tag_column=tag_column, labels=labels, scheme=scheme, convert_to=convert_to)
        if dataset is not None
        else {}
    )
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    for split, path in files.items():
        if path is not None:
            rest = scheme
            if split != "train" and scheme == "auto" and splits["train"].task.kind == "tag":
                rest = "none"
            splits[split] = read_labelled(path, tag_column=tag_column, labels=labels, scheme=rest,
                                          convert_to=convert_to)
    if scheme in ("bioes", "bilou"):
        for data in splits.values():
            _check_ends(data, scheme)
    task = splits["train"].task
    for split, data in splits.items():
        if task.kind == "tag" and data.task.kind == "span" and all(t == OUTSIDE for s in data.tags for t in s):
            data.task = task  # nothing but O fits a tag task too
        if data.task.kind != task.kind:
            raise InputError(f"{split} data {data.source} holds a {data.task.describe()} task, but the training "
                             f"data {splits['train'].source} a {task.describe()} one: give every split of one "
                             "kind (in CoNLL files, choose the tag column with --tag-column)")
        if data.task != task:  # span tags in another scheme: read in the training data's, as eval reads test data
            data.tags = [convert(sentence, task.scheme) for sentence in data.tags]
            data.task = task
            _check_converted_labels(data, labels)
    for data in splits.values():
        if data.scheme == "iob1":
            log(f"{data.source}: read as IOB1 and converted to IOB2")
        elif data.repaired:
            log(f"Warning: {data.repaired} invalid I- tags repaired as B- in {data.source}")
        held = "iob2" if data.scheme in ("iob1", "iob2") else data.scheme
        if data.task.kind == "span" and held != data.task.scheme:
            why = "" if convert_to is not None else ", the training data's scheme"
            log(f"{data.source}: {held.upper()} tags converted to {data.task.scheme.upper()}{why}")
    return splits


def _check_ends(data: LabelledData, scheme: str) -> None:
    """Refuse data read with an explicit --scheme bioes|bilou that has entities but no tag that ends one: IOB tags
    (B-/I- fit those prefixes), in which strict scoring would find no entity at all (support 0, F1 0)."""
    ends = "ES" if scheme == "bioes" else "LU"
    entities = False
    for sentence in data.tags:
        for tag in sentence:
            prefix = split_label(tag)[0]
            if prefix is not None and prefix in ends:
                return
            entities = entities or tag != OUTSIDE
    if entities:
        raise InputError(f"{data.source} was read as {scheme.upper()} (--scheme {scheme}) but no tag of it ends an "
                         f"entity ({ends[0]}- or {ends[1]}-): its tags are IOB; pass --scheme auto to have each file's "
                         "scheme detected and converted to the training data's")


def _check_converted_labels(data: LabelledData, labels: Sequence[str] | None) -> None:
    """Raise `InputError` when a split's tags, converted to the training data's scheme, leave the given labels."""
    if labels is None:
        return
    allowed = set(labels)
    for n, sentence in enumerate(data.tags):
        for w, tag in enumerate(sentence):
            if tag not in allowed:
                raise InputError(f"{data.where(n, w)}: converted to {data.task.scheme.upper()} (the training data's "
                                 f"scheme), the tag is {tag!r}, which is not in the given labels: add it to --labels")


def train(
    model: str,
    output_dir: str | Path,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    test_file: str | Path | None = None,
    dataset: str | None = None,
    tag_column: TagColumn = None,
    labels: Sequence[str] | str | None = None,
    scheme: Scheme = "auto",
    convert_to: ConvertScheme | None = None,
    epochs: float = 3,
    lr: float = 5e-5,
    batch_size: int = 16,
    max_length: int = 256,
    seed: int = 42,
    warmup_ratio: float = 0.0,
    weight_decay: float = 0.0,
    fp16: bool = False,
    bf16: bool = False,
    label_all_tokens: bool = False,
    context: int | None = None,
    resume_from_checkpoint: str | bool | None = None,
    max_steps: int | None = None,
    logging_steps: int = 50,
    overwrite: bool = False,
    log: Log = print,
) -> dict:
    """Fine-tune ``model`` (a hub name or local folder) and save it with its tokenizer.

    Writes the best model (by the task's metric on validation: entity F1, or word accuracy for a tag
    task) to ``output_dir``, epoch checkpoints below it, and ``output_dir/metrics.json``; returns the
    same metrics: ``settings``, ``kind``, ``scheme`` and ``metric`` (the task and the figure the best
    epoch was chosen by), ``data``, ``epochs`` (one evaluation entry per epoch), ``log_history``,
    ``validation`` and ``test`` scores (`fasttag.metrics.entity_scores` or `tag_scores`). ``tag_column``:
    a CoNLL column index or a JSONL/Parquet/hub column name. ``labels`` names the data's tags; with
    ``convert_to`` the model's labels are those labels' types in the scheme converted to. Warnings and
    progress notes go to ``log``.
    """
    settings = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items() if k != "log"
    }
    labels = parse_labels(labels)
    _check_settings(scheme, epochs, lr, batch_size, max_length, fp16, bf16, max_steps)
    if convert_to is not None and convert_to not in CONVERT_SCHEMES:
        raise UsageError(f"--convert-to must be one of {', '.join(CONVERT_SCHEMES)}, not {convert_to!r}")
    if context is not None and context < 16:
        raise UsageError("--context must be at least 16 sub-tokens")
    check_source_model(model)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir} exists and is not a folder")
    _check_output_dir(output_dir, model, [train_file, validation_file, test_file], resume_from_checkpoint, overwrite)
    require_train_extra()
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    if (fp16 or bf16) and not cuda:
        raise UsageError(f"--{'fp16' if fp16 else 'bf16'} needs a CUDA GPU, and none is available")

    splits = load_splits(
        train_file=train_file,
        validation_file=validation_file,
        test_file=test_file,
        dataset=dataset,
        tag_column=tag_column,
        labels=labels,
        scheme=scheme,
        convert_to=convert_to,
        log=log,
    )
    task = splits["train"].task
    if labels is None:
        labels = order_labels((tag for data in splits.values() for s in data.tags for tag in s), task)
    elif convert_to is not None:  # --labels named the data's tags; the model's are their types in the new scheme
        labels = order_labels(labels, task)

    transformers.set_seed(seed)
    config, tokenizer, labels = _load_config_and_tokenizer(model, labels)
    label2id = {label: i for i, label in enumerate(labels)}
    id2label = dict(enumerate(labels))
    max_length = _effective_max_length(tokenizer, config, max_length, log)
    settings["max_length"] = max_length
    try:
        net = transformers.AutoModelForTokenClassification.from_pretrained(
            model,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {model!r}: {_one_line(exc)}") from exc
    net.config.fasttag_task = {"kind": task.kind, "scheme": task.scheme}  # saved in config.json, read by export

    sentences = {split: len(data) for split, data in splits.items()}  # before any packing
    windows = None
    if context is not None:
        context = _effective_max_length(tokenizer, config, context, log)
        before, marked = len(splits["train"]), len(set(splits["train"].documents)) > 1
        splits["train"], windows = pack_context(tokenizer, splits["train"], context, seed)
        log(f"train: {before} sentences packed into {windows} windows of at most {context} sub-tokens "
            f"({'within documents' if marked else 'no document marks, so windows may span two documents'})")
    encoded: dict[str, Encoded] = {}
    for split, data in splits.items():
        # Evaluation labels stay on first sub-tokens whatever the training labels do.
        encoded[split] = encode(
            tokenizer,
            data,
            label2id,
            max(max_length, context or 0) if split == "train" else max_length,
            label_all_tokens=label_all_tokens and split == "train",
        )
    for split, data in splits.items():
        packed = f" in {windows} windows" if split == "train" and windows is not None else ""
        log(f"{split}: {sentences[split]} sentences{packed}, {data.n_words} words from {data.source}")
    log(f"task: {task.describe(len(labels))}; labels: {', '.join(labels)}")
    if task.kind == "tag":
        types = lambda data: {t for s in data.tags for t in s}  # noqa: E731
        what = "tags"
    else:
        types = lambda data: {split_label(t)[1] for s in data.tags for t in s if t != OUTSIDE}  # noqa: E731
        what = "entity types"
        if not types(splits["train"]):
            log("Warning: the training data has no entities (every tag is O): the model can only predict O")
    for split, data in splits.items():
        missing = sorted(types(data) - types(splits["train"]))
        if split != "train" and missing:
            log(f"Warning: {split} has {what} the training data lacks: {', '.join(missing)} "
                "(the model gets labels for them but never sees an example)")
    if encoded["train"].truncated:
        log(
            f"Warning: {encoded['train'].truncated} sentences longer than max length were "
            "truncated in training"
        )
    for split in ("validation", "test"):
        if split in encoded and encoded[split].truncated:
            log(
                f"Warning: {encoded[split].truncated} {split} sentences are longer than max "
                f"length {max_length}: their words past it count as O"
            )

    validation = splits.get("validation")
    if validation is None:
        log("Warning: no validation data: the last epoch's model is kept, without evaluation")

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        assert validation is not None  # passed to the Trainer only with validation data
        y_pred = first_subtoken_tags(
            eval_pred.predictions, encoded["validation"].positions, id2label, task.unpredicted
        )
        scores = score(task, validation.tags, y_pred)
        return flat_tag_scores(scores) if task.kind == "tag" else flat_scores(scores)

    args = transformers.TrainingArguments(
        output_dir=str(output_dir),
        eval_strategy="epoch" if validation is not None else "no",
        save_strategy="epoch",
        load_best_model_at_end=validation is not None,
        metric_for_best_model=metric_of(task) if validation is not None else None,
        greater_is_better=True,
        save_total_limit=2,
        learning_rate=lr,
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps else -1,
        per_device_train_batch_size=batch_size,
        # evaluation keeps no gradients: wider batches take far fewer steps
        per_device_eval_batch_size=max(batch_size, 32),
        warmup_ratio=warmup_ratio,
        weight_decay=weight_decay,
        fp16=fp16,
        bf16=bf16,
        seed=seed,
        logging_strategy="steps",
        logging_steps=logging_steps,
        report_to="none",
        disable_tqdm=False,
        use_cpu=not cuda,
        dataloader_pin_memory=cuda,
        group_by_length=context is not None,  # windows of similar length share a batch: little padding
    )
    class _Trainer(transformers.Trainer):
        # group_by_length would also shuffle evaluation (transformers 4.57), whose predictions are
        # matched to words by position: evaluation stays in order.
        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            return torch.utils.data.SequentialSampler(eval_dataset)

    trainer = _Trainer(
        model=net,
        args=args,
        train_dataset=encoded["train"].features,
        eval_dataset=encoded["validation"].features if validation is not None else None,
        data_collator=transformers.DataCollatorForTokenClassification(
            tokenizer, pad_to_multiple_of=8 if fp16 or bf16 else None
        ),
        processing_class=tokenizer,
        compute_metrics=compute_metrics if validation is not None else None,
        preprocess_logits_for_metrics=_argmax,
    )
    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))

    # Final scores, computed outside the Trainer so that every split is read the same way.
    trainer.compute_metrics = None
    final: dict[str, Any] = {}
    for split in ("validation", "test"):
        if split in splits:
            prediction = trainer.predict(encoded[split].features, metric_key_prefix=split)
            y_pred = first_subtoken_tags(prediction.predictions, encoded[split].positions, id2label, task.unpredicted)
            final[split] = score(task, splits[split].tags, y_pred)
            final[split]["loss"] = prediction.metrics.get(f"{split}_loss")

    history = trainer.state.log_history
    metrics = {
        "settings": settings,
        "kind": task.kind,
        "scheme": task.scheme,
        "metric": metric_of(task),
        "labels": labels,
        "data": {
            split: {
                "source": data.source,
                "sentences": sentences[split],
                **({"windows": windows} if split == "train" and windows is not None else {}),
                "words": data.n_words,
                "scheme": data.scheme,
                "repaired": data.repaired,
                "truncated": encoded[split].truncated,
            }
            for split, data in splits.items()
        },
        "epochs": [entry for entry in history if "eval_loss" in entry],
        "train": train_output.metrics,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        **final,
        "log_history": history,
        "versions": {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    return metrics


def _argmax(logits: Any, labels: Any) -> Any:
    # Keep only predicted ids across evaluation batches, not a float per label.
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def _check_settings(
    scheme: Scheme,
    epochs: float,
    lr: float,
    batch_size: int,
    max_length: int,
    fp16: bool,
    bf16: bool,
    max_steps: int | None,
) -> None:
    if scheme not in SCHEMES:
        raise UsageError(f"unknown tag scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
    if fp16 and bf16:
        raise UsageError("--fp16 and --bf16 cannot be used together")
    if epochs <= 0 and not max_steps:
        raise UsageError("epochs must be more than 0")
    if lr <= 0:
        raise UsageError("the learning rate must be more than 0")
    if batch_size < 1:
        raise UsageError("the batch size must be at least 1")
    if max_length < 8:
        raise UsageError("max length must be at least 8 tokens")


def _check_output_dir(output_dir: Path, model: str, data_files: list, resume: str | bool | None,
                      overwrite: bool) -> None:
    """Refuse to train into the model's own folder, or over an earlier run unless asked to (then clear it)."""
    if Path(model).exists() and is_within(model, output_dir):
        raise UsageError(f"--output-dir {output_dir} is, or holds, the model {model}; choose another folder")
    if resume is True:
        return  # the Trainer continues from the last checkpoint in output_dir
    if isinstance(resume, (str, Path)) and resume:
        if not (Path(resume) / "trainer_state.json").is_file():
            raise UsageError(f"--resume-from-checkpoint {resume} is not a Trainer checkpoint (no trainer_state.json); "
                             f"give a checkpoint-N folder of an earlier run's --output-dir")
        if is_within(resume, output_dir):
            return  # continuing the run that wrote this folder
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    if not overwrite:
        raise UsageError(f"--output-dir {output_dir} is not empty (an earlier run?): pass --overwrite to replace it, "
                         f"or --resume-from-checkpoint {output_dir}/checkpoint-N to continue that run")
    for f in data_files:
        if f and is_within(f, output_dir):
            raise UsageError(f"--overwrite would delete {f}, which is inside --output-dir {output_dir}")
    shutil.rmtree(output_dir)


def _load_config_and_tokenizer(model: str, labels: list[str]) -> tuple[Any, Any, list[str]]:
    """The model's config and fast tokenizer, and the label order to train with.

    A model that already has a head for exactly these labels keeps its order, so that the head's
    rows keep their meaning.
    """
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(model)
        extra = {"add_prefix_space": True} if config.model_type in PREFIX_SPACE_MODELS else {}
        tokenizer = transformers.AutoTokenizer.from_pretrained(model, use_fast=True, **extra)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {model!r}: {_one_line(exc)}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"{model!r} has no fast tokenizer (tokenizer.json); fasttag needs one to map words "
            "to sub-tokens"
        )
    # Word labels are read at fixed positions of right-padded batches.
    tokenizer.padding_side = "right"
    model_labels = getattr(config, "label2id", None) or {}
    if set(model_labels) == set(labels) and len(model_labels) == len(labels):
        labels = sorted(labels, key=lambda label: model_labels[label])
    return config, tokenizer, labels


def _effective_max_length(tokenizer: Any, config: Any, max_length: int, log: Log) -> int:
    limits = [getattr(config, "max_position_embeddings", None)]
    if tokenizer.model_max_length and tokenizer.model_max_length < 1_000_000:
        limits.append(tokenizer.model_max_length)
    limit = min((n for n in limits if n), default=None)
    if limit is not None and max_length > limit:
        log(f"Warning: max length {max_length} is more than the model takes; using {limit}")
        return limit
    return max_length


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
