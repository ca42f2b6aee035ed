"""The engine options' one table (`fasttag.options.EngineOptions`): the CLI, the API and resume state read it."""

import dataclasses
from typing import get_args

import click
import pytest

from fasttag import options
from fasttag.cli import cli
from fasttag.options import EngineOptions
from fasttag.tagger import Tagger


@pytest.mark.parametrize("command", ["run", "show", "eval"])
def test_every_engine_option_of_a_command_is_generated_from_the_table(command):
    params = {p.name: p for p in cli.commands[command].params}
    for f in dataclasses.fields(EngineOptions):
        if not f.metadata["cli"] and not (command == "run" and f.name in options.RUN_ONLY_OPTIONS):
            assert f.name not in params
            continue
        param = params[f.name]
        assert param.default == f.default
        assert param.help == f.metadata["help"]
        assert options.flag_of(f.name) in param.opts
        if isinstance(param.type, click.Choice):
            hint = {"aggregation": options.Aggregation, "device": options.Device,
                    "word_boundaries": options.WordBoundaries, "level": options.Level,
                    "precision": options.Precision, "windows": options.WindowCuts}[f.name]
            assert tuple(param.type.choices) == get_args(hint)


def test_every_choice_list_is_its_literal():
    for values, hint in [(options.AGGREGATIONS, options.Aggregation), (options.WORD_BOUNDARIES, options.WordBoundaries),
                         (options.DEVICES, options.Device), (options.PRECISIONS, options.Precision),
                         (options.MODES, options.Mode), (options.ON_ERROR, options.OnError),
                         (options.ENGINES, options.Engine), (options.SCHEMES, options.Scheme),
                         (options.WINDOW_CUTS, options.WindowCuts)]:
        assert values == get_args(hint)
    from fasttag.aggregate import STRATEGIES
    from fasttag.labelled import SCHEMES

    assert STRATEGIES is options.AGGREGATIONS and SCHEMES is options.SCHEMES


def test_options_are_checked_when_made():
    with pytest.raises(options.UsageError, match="--threads must be at least 1, got 0"):
        EngineOptions(threads=0)
    with pytest.raises(options.UsageError, match="--aggregation must be one of simple, first, average, max"):
        EngineOptions(aggregation="mean")
    with pytest.raises(options.UsageError, match="--windows must be one of even, full, sentences"):
        EngineOptions(windows="paragraphs")
    with pytest.raises(TypeError):
        EngineOptions().replace(no_such_option=1)


def test_tagger_takes_options_or_keywords_alike(bert_export):
    by_keywords = Tagger.load(bert_export, aggregation="first", max_length=64)
    by_options = Tagger.load(options=EngineOptions(model_dir=str(bert_export), aggregation="first", max_length=64))
    assert by_keywords.options == by_options.options
    # defaults resolved: what --resume records
    state = by_keywords.options.resume_state()
    assert state == {"revision": None, "precision": "fp32",
                     "aggregation": "first", "level": "entities", "max_length": 64, "stride": 31,
                     "windows": "even", "batch_tokens": 1024,
                     "word_boundaries": EngineOptions().word_boundaries, "max_batch_size": 16}
    with pytest.raises(TypeError):
        Tagger.load(bert_export, no_such_option=1)


def test_every_output_option_of_run_is_generated_from_its_table():
    params = {p.name: p for p in cli.commands["run"].params}
    for f in dataclasses.fields(options.OutputOptions):
        param = params[f.name]
        assert param.help == f.metadata["help"]
        assert "--" + f.name.replace("_", "-") in param.opts
    assert tuple(params["layout"].type.choices) == options.LAYOUTS == get_args(options.Layout)
    # what a run made before these options wrote is what their defaults write
    assert options.OUTPUT_DEFAULTS == {"keep_columns": [], "min_score": None, "labels": None, "layout": "nested"}
