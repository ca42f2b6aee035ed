"""`fasttag train`: fine-tune an encoder on labelled sentences (options only; see fasttag.train)."""

from __future__ import annotations

from pathlib import Path

import click

from fasttag.options import CONVERT_SCHEMES, SCHEMES

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("train")
@click.option("--model", required=True, metavar="NAME_OR_DIR",
              help="Encoder to fine-tune: a HuggingFace hub name or a local model folder.")
@click.option("--output-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the trained model, its tokenizer, checkpoints and metrics.json.")
@click.option("--dataset", metavar="NAME",
              help="HuggingFace hub dataset with tokens and tag columns (needs the hub).")
@click.option("--train", "train_file", type=FILE,
              help="Training data: CoNLL columns (.txt .conll .iob .bio .tsv), .jsonl(.gz) or "
                   ".parquet.")
@click.option("--validation", "validation_file", type=FILE,
              help="Validation data: evaluated every epoch; the best epoch is kept.")
@click.option("--test", "test_file", type=FILE, help="Test data, evaluated once at the end.")
@click.option("--tag-column", metavar="INDEX|NAME",
              help="The tags: in CoNLL files a column index (1 = the second column, -1 = the last; default -1; "
                   "CoNLL-2003 holds word, POS, chunk, NER: 1 trains a POS tagger), in JSONL, Parquet and hub "
                   "data a column name (default ner_tags).")
@click.option("--labels", metavar="O,B-PER,...",
              help="The complete label list of the data, comma separated: fixes the label order (unless the "
                   "model already has a head for exactly these labels: its order is kept), names integer tags, "
                   "and makes any other tag an error.")
@click.option("--scheme", type=click.Choice(SCHEMES), default="auto", show_default=True,
              help="Tag scheme of the data: auto detects it (no prefixes: a tag task such as POS; E-/S-: BIOES; "
                   "L-/U-: BILOU; else IOB1 or IOB2); none is a tag task. IOB1 is converted to IOB2, the others "
                   "are kept. With auto, validation and test span tags in another scheme than the training data's "
                   "are converted to it.")
@click.option("--convert-to", type=click.Choice(CONVERT_SCHEMES),
              help="Convert span tags to this scheme as they are read (e.g. bioes: train a BIOES model from IOB2 "
                   "data); validation and test are converted alike.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=3,
              show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-5,
              show_default=True, help="Peak learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-length", type=click.IntRange(min=8), default=256, show_default=True,
              help="Sub-tokens per sentence; longer sentences are truncated.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--warmup-ratio", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--fp16", is_flag=True, help="Mixed precision in float16 (CUDA GPU only).")
@click.option("--bf16", is_flag=True, help="Mixed precision in bfloat16 (CUDA GPU only).")
@click.option("--label-all-tokens", is_flag=True,
              help="Train on every sub-token of a word, not just the first (evaluation still "
                   "reads first sub-tokens).")
@click.option("--context", type=click.IntRange(min=16), metavar="N",
              help="Train with document context: pack consecutive sentences of a document (-DOCSTART- "
                   "in CoNLL files) into windows of up to N sub-tokens (each window's size drawn between "
                   "32 and N), labels on every sentence, so that the model tags whole documents as well "
                   "as sentences. Validation and test stay sentence by sentence.")
@click.option("--resume-from-checkpoint", type=click.Path(exists=True, file_okay=False),
              metavar="PATH", help="Continue from a checkpoint folder of an earlier run.")
@click.option("--max-steps", type=click.IntRange(min=1),
              help="Stop after this many optimizer steps (for quick trials).")
@click.option("--overwrite", is_flag=True,
              help="Replace a non-empty --output-dir (an earlier run); without it such a folder is refused.")
def train_command(
    model: str,
    output_dir: Path,
    dataset: str | None,
    train_file: Path | None,
    labels: str | None,
    **options,
) -> None:
    """Fine-tune an encoder for token classification (NER, POS, chunking, ...) and save it for `fasttag export`.

    The task follows the tags: span tags (IOB2, BIOES, BILOU; IOB1 is converted to IOB2) are a span
    task, evaluated each epoch on --validation by entity F1 (seqeval strict, in their scheme); tags
    without prefixes (POS) are a tag task, evaluated by word accuracy. The best epoch is kept, and
    per-type (per-tag) scores are printed at the end and written to OUTPUT_DIR/metrics.json.

    \b
    Examples:
      fasttag train --model bert-base-cased --train train.txt --validation valid.txt \\
          --test test.txt --output-dir ckpt --epochs 3
      fasttag train --model bert-base-cased --train train.txt --tag-column 1 --output-dir pos
      fasttag train --model bert-base-cased --train train.txt --convert-to bioes --output-dir ner-bioes
    """
    if dataset is not None and train_file is not None:
        raise click.UsageError("--dataset and --train cannot be used together: give one of them.")
    if dataset is None and train_file is None:
        raise click.UsageError("Give the training data with --train FILE (or --dataset NAME).")

    from fasttag.metrics import format_scores_table, format_tag_table
    from fasttag.train import train

    metrics = train(
        model,
        output_dir,
        train_file=train_file,
        dataset=dataset,
        labels=labels,
        log=lambda message: click.echo(message, err=True),
        **options,
    )
    for split in ("validation", "test"):
        if split in metrics:
            click.echo()
            title = f"{split} ({metrics['data'][split]['source']})"
            table = format_tag_table if metrics["kind"] == "tag" else format_scores_table
            click.echo(table(metrics[split], title=title))
    click.echo()
    click.echo(f"Saved the model to {output_dir} (metrics in {output_dir / 'metrics.json'})")
