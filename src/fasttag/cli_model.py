"""`fasttag export` and `fasttag info`."""

from __future__ import annotations

import json
from typing import Any

import click

from fasttag.options import PRECISIONS, engine_option


@click.command()
@click.argument("model", metavar="MODEL")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to create with model.onnx, the tokenizer, config.json and fasttag.json.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="int8: dynamic quantization for CPU; fp16: for CUDA.")
@click.option("--opset", type=click.IntRange(14, 23), default=18, show_default=True,
              help="ONNX opset (14, the first with scaled dot-product attention, to 23, torch's newest).")
@click.option("--per-channel/--per-tensor", default=True, show_default=True,
              help="int8 weight quantization granularity.")
@click.option("--keep-fp32", "keep_fp32", multiple=True, metavar="PATTERN",
              help="int8: leave the MatMuls whose node names contain PATTERN in fp32 (repeatable; e.g. "
                   "'layer.0/' for the first encoder layer, which costs the most accuracy when quantized).")
@click.option("--split-outliers", "split_outliers", multiple=True, metavar="PATTERN",
              help="int8: split the MatMuls whose node names contain PATTERN (repeatable): the few input channels "
                   "of largest magnitude (found on generated sentences) are multiplied in fp32, the rest in int8. "
                   "Nearly as accurate as --keep-fp32 for the same MatMuls, nearly as fast as quantizing them.")
@click.option("--outlier-channels", type=click.IntRange(1), default=8, show_default=True, metavar="N",
              help="int8: the input channels of each --split-outliers MatMul kept in fp32.")
@click.option("--reduce-range", is_flag=True, help="int8: quantize weights to 7 bits (onnxruntime's reduce_range).")
@click.option("--run-max-length", type=click.IntRange(8), metavar="N",
              help="Record in fasttag.json the window (tokens) 'run' uses for this model unless --max-length is given.")
@click.option("--run-stride", type=click.IntRange(0), metavar="N",
              help="Record the windows' overlap 'run' uses for this model unless --stride is given.")
@click.option("--fuse", is_flag=True,
              help="Run onnxruntime's transformer fusions (attention, layer norm, GELU) on the graph before "
                   "quantizing or converting it (BERT-like models); fasttag.json counts the fused operators. Off by "
                   "default: measured slower on the CPU (its SkipLayerNormalization kernel, which fasttag run "
                   "otherwise leaves out there, is the slow one).")
@click.option("--no-validate", is_flag=True, help="Skip the comparison with PyTorch (not recommended).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
def export(model, out_dir, precision, opset, per_channel, keep_fp32, split_outliers, outlier_channels, reduce_range,
           run_max_length, run_stride, fuse, no_validate, overwrite):
    """Export a transformers token-classification checkpoint to ONNX and validate it against PyTorch.

    MODEL is a local checkpoint folder (e.g. made by 'fasttag train') or a hub name where the hub is
    reachable. Fails (exit 1, nothing written) if fp32 logits differ by more than 1e-3 or any argmax
    differs; for int8/fp16, if fewer than 98% of argmaxes agree.

    \b
    Example:
      fasttag export ckpt -o ckpt-onnx
      fasttag export ckpt -o ckpt-int8 --precision int8
      fasttag export ckpt -o ckpt-int8 --precision int8 --split-outliers layer.0/ --reduce-range
    """
    from fasttag.export import export as do_export

    manifest = do_export(model, out_dir, precision=precision, opset=opset, overwrite=overwrite,
                         per_channel=per_channel, validate=not no_validate, keep_fp32=keep_fp32,
                         reduce_range=reduce_range, run_max_length=run_max_length, run_stride=run_stride,
                         fuse=fuse, split_outliers=split_outliers, outlier_channels=outlier_channels,
                         log=lambda m: click.echo(m, err=True))
    n_labels = len(manifest["labels"])
    click.echo(f"wrote {out_dir} ({manifest['precision']}, {n_labels} label{'s' if n_labels != 1 else ''}, "
               f"max length {manifest['max_length']})")


@click.command()
@click.argument("model", metavar="[MODEL]", required=False)
@engine_option("model_dir")
@engine_option("revision")
@engine_option("precision")
@click.option("--json", "as_json", is_flag=True, help="Print the information as JSON.")
def info(model, model_dir, revision, precision, as_json):
    """Show a model's labels, precision, max length, opset, file sizes and the available providers.

    MODEL (or --model MODEL, as the other commands take it) is what --model of 'fasttag run' takes: an
    export folder, an ONNX folder, a transformers checkpoint folder or a hub model id (the last two are
    exported once into fasttag's cache, and the export is what is shown). Without MODEL, shows the
    embedded default model. Checks that onnxruntime loads the graph and that the tokenizer loads, as
    'fasttag run' loads them (a broken model.onnx or tokenizer.json is an error); for a folder without
    fasttag.json, the precision is inferred from the graph and what only the manifest records is shown
    as unknown.

    \b
    Example:
      fasttag info my-export
      fasttag info --model my-export --json
      fasttag info dslim/bert-base-NER --revision main
    """
    from fasttag.errors import UsageError
    from fasttag.infer import available_providers
    from fasttag.model import MANIFEST, TOKENIZER_FILE, ModelBundle, check_graph, graph_precision, source_display
    from fasttag.tokenization import DocumentTokenizer

    if model is not None and model_dir is not None:
        raise UsageError(f"give the model once: as MODEL ({model}) or as --model ({model_dir}), not both")
    model = model if model is not None else model_dir
    bundle = ModelBundle.load(model, revision=revision, precision=precision)
    check_graph(bundle.onnx_path)  # a truncated or corrupt model.onnx is an error, not a healthy summary
    DocumentTokenizer.from_file(bundle.path / TOKENIZER_FILE, max_length=bundle.max_length, stride=0)  # as run loads it
    m = bundle.manifest
    task = bundle.task
    has_manifest = bool(m)
    precision, inferred = m.get("precision"), False
    if not precision:
        precision, inferred = graph_precision(bundle.onnx_path), True
    origin = bundle.origin
    data: dict[str, Any] = {
        "model": bundle.describe(),
        "form": origin.form if origin else "export",  # default, export, onnx, checkpoint or hub
        "commit": origin.commit if origin else None,
        "cache_key": origin.cache_key if origin else None,
        "path": str(bundle.path),
        "labels": bundle.labels,
        "task": {"kind": task.kind, "scheme": task.scheme},  # recorded in the manifest, else detected from the labels
        "precision": precision,  # None: unknown
        "precision_inferred": inferred and precision is not None,
        "max_length": bundle.max_length,
        "opset": m.get("opset"),
        "source_model": source_display(m),
        "validation": m.get("validation"),
        "manifest": has_manifest,
        "files": bundle.file_sizes(),
        "providers": available_providers(),
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    shown = data["precision"] or "unknown"
    if data["precision_inferred"]:
        shown += " (inferred from the graph)"
    click.echo(f"model:      {data['model']}")
    if data["path"] != (origin.name if origin else data["path"]):
        click.echo(f"folder:     {data['path']}")
    click.echo(f"labels:     {', '.join(data['labels'])}")
    click.echo(f"task:       {task.describe(len(bundle.labels))}")
    click.echo(f"precision:  {shown}    max length: {data['max_length']}    opset: {data['opset'] or 'unknown'}")
    if data["source_model"]:
        click.echo(f"source:     {data['source_model']}")
    if data["validation"]:
        v = data["validation"]
        click.echo(f"validation: max |logit diff| {v['max_abs_logit_diff']:.2e}, "
                   f"argmax agreement {v['argmax_agreement']:.2%}")
    elif has_manifest:
        click.echo("validation: none recorded (exported with --no-validate)")
    else:
        click.echo(f"validation: unknown (no {MANIFEST})")
    click.echo("files:      " + ", ".join(f"{k} ({v / 1e6:.1f} MB)" for k, v in data["files"].items()))
    click.echo(f"providers:  {', '.join(data['providers'])}")
