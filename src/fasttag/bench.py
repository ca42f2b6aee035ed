"""`fasttag bench`: how fast `fasttag run` is on this machine, and (`--tune`) which batch setting is fastest here.

A benchmark loads the model once, warms it up, then runs `fasttag.run.run` (the run path itself, reading a
Parquet file and writing one) several times over the same corpus: INPUT, or a generated one
(`fasttag.synthetic`). Each pass gives tokens/s, words/s and documents/s; the figures are the mean of the
passes with a 95% bootstrap interval. The stage shares come from the tagger's own clock (`StageTimes`),
summed over the timed passes.

The sweep (`tune`) measures settings of batch tokens, rows per batch, streams and threads, the built-in
defaults among them, one pass each on a sample of the corpus, within a time budget; then the defaults
and the fastest setting once more, alternately. The fastest is saved (`fasttag.tuning`) only if it beat
the defaults measured in the same sweep; otherwise the defaults are saved, so a tuned run is never
slower than the defaults were on the machine the sweep ran on.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fasttag import __version__
from fasttag.errors import MissingExtraError, UsageError, missing_modules
from fasttag.infer import CPU_DISABLED_OPTIMIZERS
from fasttag.machine import CpuWatch, Machine, machine
from fasttag.options import EngineOptions
from fasttag.stages import STAGES, StageTimes
from fasttag.tuning import BatchSetting

BATCH_TOKENS = (512, 1024, 2048, 4096)
BATCH_ROWS = (8, 16, 32, 64)
COMPARISONS = ("pipeline", "onnxruntime")
TUNE_SAMPLE_ROWS = 600
WIN_MARGIN = 1.02  # a setting replaces the defaults only if it is at least 2% faster than them
BUSY = ("warning: other processes held the CPUs while it ran, and the figures (and a sweep's "
        "winner) reflect a busy machine; measure with nothing else running")


@dataclass
class Rate:
    mean: float
    low: float
    high: float

    def describe(self, unit: str) -> str:
        return f"{self.mean:,.0f} {unit}/s (95% CI {self.low:,.0f}-{self.high:,.0f})"


@dataclass
class PassTimes:
    seconds: float
    tokens: int


@dataclass
class BenchResult:
    machine: Machine
    model: str
    provider: str
    setting: BatchSetting
    corpus: str
    docs: int
    words: int
    tokens: int
    passes: list[PassTimes]
    stages: StageTimes
    duplicates: int = 0
    tuned: str | None = None
    compare: dict[str, Any] = field(default_factory=dict)
    fusions_left_out: tuple[str, ...] = ()  # onnxruntime graph fusions the sessions were built without

    def rates(self) -> dict[str, Rate]:
        seconds = np.array([p.seconds for p in self.passes])
        return {"tokens": bootstrap(self.tokens / seconds), "words": bootstrap(self.words / seconds),
                "docs": bootstrap(self.docs / seconds)}

    def lines(self) -> list[str]:
        rates = self.rates()
        shares = self.stages.shares()
        out = [
            f"machine: {self.machine.describe()}",
            f"model: {self.model} on {self.provider}; {self.setting.describe()}"
            + (f" ({self.tuned})" if self.tuned else "")
            + (f"; onnxruntime fusions not applied: {', '.join(self.fusions_left_out)} (slower kernels on the CPU)"
               if self.fusions_left_out else ""),
            f"corpus: {self.corpus}: {self.docs:,} documents, {self.words:,} words, {self.tokens:,} tokens"
            + (f"; {self.duplicates:,} duplicate rows per pass tagged once" if self.duplicates else ""),
            f"passes: {len(self.passes)} timed ({', '.join(f'{p.seconds:.2f}s' for p in self.passes)})",
            f"speed: {rates['tokens'].describe('tokens')}, {rates['words'].describe('words')}, "
            f"{rates['docs'].describe('docs')}",
            "stages: " + ", ".join(f"{name} {shares[name]:.1%}" for name in STAGES)
            + " (of their summed time; reading and tokenizing overlap the model)",
            f"padding: {self.stages.padding_share:.1%} of the tokens the model ran",
        ]
        if self.machine.busy():
            out.append(BUSY)
        if self.compare.get("system") == "onnxruntime":
            c = self.compare
            out.append(f"onnxruntime alone on the same {c['batches']:,} batches (inputs built beforehand, a pass "
                       f"beside each of fasttag's): {c['docs_per_s']:,.1f} docs/s; fasttag at {c['ratio']:.1%} of it "
                       f"(95% CI {c['ratio_ci'][0]:.1%}-{c['ratio_ci'][1]:.1%})")
        elif self.compare:
            c = self.compare
            out.append(f"pipeline: transformers {c['transformers']} (torch {c['torch']}, {c['threads']} threads, "
                       f"batch_size {c['batch_size']}, aggregation {c['aggregation']}): "
                       f"{c['docs_per_s']:,.1f} docs/s; fasttag/pipeline {c['ratio']:.2f}x")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "fasttag": __version__, "machine": self.machine.as_dict(), "model": self.model, "provider": self.provider,
            "setting": asdict(self.setting), "tuned": self.tuned, "corpus": self.corpus, "docs": self.docs,
            "words": self.words, "tokens": self.tokens, "duplicates_per_pass": self.duplicates,
            "pass_seconds": [p.seconds for p in self.passes],
            "rates": {name: asdict(rate) for name, rate in self.rates().items()},
            "stage_seconds": self.stages.seconds(), "stage_shares": self.stages.shares(),
            "padding_share": self.stages.padding_share, "compare": self.compare or None,
            "fusions_left_out": list(self.fusions_left_out),
        }


def bootstrap(values: np.ndarray, rounds: int = 2000, seed: int = 0) -> Rate:
    """The mean of `values` with a 95% percentile-bootstrap interval (the mean itself for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Rate(mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Rate(mean, float(low), float(high))


@dataclass
class Corpus:
    """The benchmark's input as a Parquet file with a `text` column, and its size in documents and words."""

    path: str
    name: str
    texts: list[str]

    @property
    def words(self) -> int:
        return sum(len(t.split()) for t in self.texts if isinstance(t, str))


def make_corpus(folder: Path, input: str | None = None, text_column: str = "text", limit: int | None = None,
                kind: str = "sentences", docs: int | None = None, seed: int = 0) -> Corpus:
    """INPUT's texts (the first `limit`), or a generated corpus of `docs` documents, written to `folder`."""
    from fasttag import synthetic

    if input is not None:
        from fasttag.read import CorpusReader

        texts: list = []
        for chunk in CorpusReader(input, text_column, None, limit=limit):
            texts.extend(chunk.texts)
        name = f"{input} ({text_column!r}{f', first {limit:,} rows' if limit is not None else ''})"
    else:
        n = docs or (2000 if kind == "sentences" else 150)  # about the same tokens either way: 30-60k
        texts = synthetic.corpus(kind, n, seed)
        name = f"generated {kind} (seed {seed})"
    if not texts:
        raise UsageError(f"the benchmark corpus is empty{f': {input} has no rows' if input else ''}")
    path = folder / "corpus.parquet"
    pq.write_table(pa.table({"text": pa.array(texts, type=pa.string())}), path)
    return Corpus(str(path), name, texts)


def default_setting(tagger_threads: int | None = None) -> BatchSetting:
    """The built-in CPU defaults, as a Tagger resolves them here (FASTTAG_THREADS/STREAMS included)."""
    from fasttag.infer import cpu_count, default_streams, default_threads
    from fasttag.tagger import CPU_BATCH_TOKENS, CPU_MAX_BATCH

    threads = tagger_threads or default_threads() or cpu_count()
    return BatchSetting(CPU_BATCH_TOKENS, CPU_MAX_BATCH, default_streams(threads), threads)


def _setting_of(tagger) -> BatchSetting:
    return BatchSetting(tagger.batcher.budget_tokens, tagger.batcher.max_batch_size, tagger.streams, tagger.threads)


def _time_pass(tagger, corpus: Corpus, out: Path) -> tuple[PassTimes, int]:
    from fasttag.run import run

    started = time.perf_counter()
    summary = run(tagger, corpus.path, str(out), overwrite=True)
    return PassTimes(time.perf_counter() - started, summary.tokens), summary.duplicates


def bench(options: EngineOptions, input: str | None = None, text_column: str = "text", limit: int | None = None,
          kind: str = "sentences", docs: int | None = None, passes: int = 5, warmup: int = 1, seed: int = 0,
          compare: str | None = None, checkpoint: str | None = None,
          log: Callable[[str], None] | None = None) -> BenchResult:
    """Benchmark `fasttag run` with `options` on INPUT or a generated corpus (see the module's docstring)."""
    from fasttag.tagger import Tagger

    if passes < 1:
        raise UsageError(f"--passes must be at least 1, got {passes}")
    if compare not in (None, *COMPARISONS):
        raise UsageError(f"--compare takes {' or '.join(COMPARISONS)}, got {compare!r}")
    if compare == "pipeline" and (missing := missing_modules(["torch", "transformers"])):
        # said before anything runs (found without importing them)
        raise MissingExtraError("train", "--compare pipeline", missing[0])
    log = log or (lambda message: None)
    with tempfile.TemporaryDirectory(prefix="fasttag-bench-") as tmp:
        corpus = make_corpus(Path(tmp), input, text_column, limit, kind, docs, seed)
        tagger = Tagger.load(options=options)
        log(f"{tagger.bundle.describe()} on {tagger.provider}" + (f"; {tagger.tuned}" if tagger.tuned else ""))
        out = Path(tmp) / "out.parquet"
        # before any pass: a missing checkpoint fails now
        model = pipeline_checkpoint(tagger, checkpoint) if compare == "pipeline" else ""
        for i in range(warmup):
            log(f"warm-up pass {i + 1}/{warmup}")
            _time_pass(tagger, corpus, out)
        feeds = onnxruntime_feeds(tagger, corpus.texts) if compare == "onnxruntime" else None
        tagger.stages.reset()
        timed, duplicates, alone = [], 0, []
        with CpuWatch() as watch:
            for i in range(passes):
                # --compare onnxruntime: a pass of the sessions alone beside each pass of fasttag, the order turning
                # each time, so that the host's drift over the passes falls on both alike
                if feeds is not None and i % 2:
                    alone.append(onnxruntime_pass(tagger, feeds))
                times, duplicates = _time_pass(tagger, corpus, out)
                if feeds is not None and not i % 2:
                    alone.append(onnxruntime_pass(tagger, feeds))
                log(f"pass {i + 1}/{passes}: {times.seconds:.2f}s"
                    + (f" (onnxruntime alone {alone[-1]:.2f}s)" if feeds is not None else ""))
                timed.append(times)
        here = machine()
        here.others = watch.others
        result = BenchResult(here, tagger.bundle.describe(), tagger.provider, _setting_of(tagger), corpus.name,
                             len(corpus.texts), corpus.words, timed[-1].tokens, timed, tagger.stages,
                             duplicates=duplicates, tuned=tagger.tuned,
                             fusions_left_out=CPU_DISABLED_OPTIMIZERS if tagger.provider == "CPUExecutionProvider"
                             else ())
        if compare == "pipeline":
            threads = result.setting.threads
            log(f"transformers pipeline on {model} ({threads} threads)")
            result.compare = pipeline_speed(model, corpus.texts, threads, tagger.aggregation, tagger.provider,
                                            passes=max(1, min(passes, 3)))
            result.compare["ratio"] = result.rates()["docs"].mean / result.compare["docs_per_s"]
        elif feeds is not None:
            result.compare = onnxruntime_result(len(corpus.texts), feeds, alone, [t.seconds for t in timed])
        return result


def onnxruntime_feeds(tagger, texts: list[str], chunk_rows: int = 2048) -> list[tuple[np.ndarray, np.ndarray]]:
    """The model inputs of every batch `fasttag run` makes of `texts` (the same chunks, less the duplicates its
    window leaves out), built beforehand, and the sessions warmed on them: what `onnxruntime_pass` times."""
    from fasttag.dedup import DuplicateWindow, window_rows

    rows = window_rows(tagger.options.dedup_window, tagger.bundle.precision)
    window = DuplicateWindow(rows) if rows else None
    feeds = []
    for start in range(0, len(texts), chunk_rows):
        values = texts[start:start + chunk_rows]
        chunk = tagger.tokenize(window.plan(values).new_values if window is not None else values)
        feeds += [tagger.model_inputs(chunk, batch) for batch in tagger.batches(chunk)]
    for _ in tagger.run_model(feeds[:4]):
        pass
    return feeds


def onnxruntime_pass(tagger, feeds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Seconds the tagger's own sessions alone (`Tagger.run_model`) take over `feeds`: the limit fasttag's other
    stages leave room under."""
    started = time.perf_counter()
    for _ in tagger.run_model(feeds):
        pass
    return time.perf_counter() - started


def onnxruntime_result(docs: int, feeds: list[tuple[np.ndarray, np.ndarray]], alone: list[float],
                       fasttag: list[float]) -> dict[str, Any]:
    """--compare onnxruntime: the sessions' speed alone, and fasttag's share of it, pass by pass (each fasttag pass
    against the onnxruntime pass beside it) with a 95% interval."""
    rate = bootstrap(docs / np.array(alone))
    share = bootstrap(np.array(alone) / np.array(fasttag))
    return {"system": "onnxruntime", "batches": len(feeds), "padded_tokens": sum(ids.size for ids, _ in feeds),
            "pass_seconds": alone, "docs_per_s": rate.mean,
            "docs_per_s_ci": [rate.low, rate.high], "ratio": share.mean, "ratio_ci": [share.low, share.high]}


# -- the transformers pipeline, for --compare pipeline ----------------------------------------------
def _pipeline_modules():
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingExtraError("train", "--compare pipeline", exc.name or "transformers") from exc
    return torch, transformers


def pipeline_checkpoint(tagger, checkpoint: str | None) -> str:
    """The PyTorch model the pipeline runs: --checkpoint, else the checkpoint or hub id --model named."""
    if checkpoint:
        return checkpoint
    origin = tagger.bundle.origin
    if origin is not None and origin.form in ("checkpoint", "hub"):
        return origin.name
    manifest = tagger.bundle.manifest
    if manifest.get("source_model") and manifest.get("source_is_local") is False:
        return str(manifest["source_model"])  # an export of a hub model: the pipeline loads it from the hub
    raise UsageError("--compare pipeline needs the PyTorch checkpoint this export was made from: pass "
                     "--checkpoint DIR (or give --model the checkpoint or hub id)")


def pipeline_speed(model: str, texts: list[str], threads: int, aggregation: str, provider: str,
                   passes: int = 1, batch_size: int = 32) -> dict[str, Any]:
    """Documents/s of transformers' token-classification pipeline on `texts` (PyTorch, same threads)."""
    import warnings

    torch, transformers = _pipeline_modules()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    device = "cuda:0" if provider != "CPUExecutionProvider" and torch.cuda.is_available() else "cpu"
    strategy = aggregation if aggregation in ("simple", "first", "average", "max") else "none"
    pipe = transformers.pipeline("token-classification", model=model, aggregation_strategy=strategy, device=device)
    pipe(texts[:64], batch_size=batch_size)
    seconds = []
    for _ in range(passes):
        started = time.perf_counter()
        pipe(texts, batch_size=batch_size)
        seconds.append(time.perf_counter() - started)
    rate = bootstrap(len(texts) / np.array(seconds))
    return {"system": "pipeline", "transformers": transformers.__version__, "torch": torch.__version__,
            "threads": threads, "batch_size": batch_size, "aggregation": strategy, "device": device,
            "pass_seconds": seconds, "docs_per_s": rate.mean, "docs_per_s_ci": [rate.low, rate.high]}


# -- the sweep --------------------------------------------------------------------------------------
@dataclass
class Trial:
    setting: BatchSetting
    tokens_per_s: float


@dataclass
class TuneResult:
    machine_key: str
    architecture: str
    busy: bool
    defaults: BatchSetting
    best: BatchSetting
    default_rates: list[float]
    best_rates: list[float]
    trials: list[Trial]
    path: Path | None = None

    @property
    def speedup(self) -> float:
        return float(np.median(self.best_rates) / np.median(self.default_rates))

    def lines(self) -> list[str]:
        speeds = [t.tokens_per_s for t in self.trials]
        out = [f"tried {len(speeds)} settings ({min(speeds):,.0f}-{max(speeds):,.0f} tokens/s)"]
        out.append(f"defaults: {self.defaults.describe()}: {np.median(self.default_rates):,.0f} tokens/s")
        if self.best == self.defaults:
            out.append("no setting beat the defaults by 2% or more: the defaults are saved")
        else:
            out.append(f"best: {self.best.describe()}: {np.median(self.best_rates):,.0f} tokens/s "
                       f"({self.speedup:.2f}x the defaults, measured alternately with them)")
        if self.busy:
            out.append(BUSY)
        if self.path:
            out.append(f"saved for {self.architecture} on this machine in {self.path}; `fasttag run` uses it when "
                       "no batch option is given (--ignore-tuned: not)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine_key, "architecture": self.architecture, "defaults": asdict(self.defaults),
                "best": asdict(self.best), "default_tokens_per_s": self.default_rates,
                "best_tokens_per_s": self.best_rates, "speedup": self.speedup, "saved": str(self.path),
                "trials": [{**asdict(t.setting), "tokens_per_s": t.tokens_per_s} for t in self.trials]}


def pick_best(defaults: BatchSetting, default_rates: list[float], best: BatchSetting, best_rates: list[float],
              margin: float = WIN_MARGIN) -> BatchSetting:
    """`best` if its median speed beats the defaults' median (same sweep) by `margin`, else the defaults."""
    if best != defaults and np.median(best_rates) >= margin * np.median(default_rates):
        return best
    return defaults


def candidate_threads(cores: int) -> list[tuple[int, int]]:
    """(threads, streams) pairs to try: all cores or half of them, on 1, 2 or 4 streams."""
    pairs = []
    for threads in sorted({cores, max(1, cores // 2)}, reverse=True):
        for streams in (1, 2, 4):
            if streams <= threads:
                pairs.append((threads, streams))
    return pairs


def tune(options: EngineOptions, input: str | None = None, text_column: str = "text", limit: int | None = None,
         kind: str = "sentences", docs: int | None = None, seconds: float = 120.0, seed: int = 0, save: bool = True,
         log: Callable[[str], None] | None = None) -> TuneResult:
    """Sweep batch settings on this machine within about `seconds`, and save the fastest (see the docstring)."""
    from fasttag.batch import TokenBudgetBatcher
    from fasttag.model import ModelBundle
    from fasttag.tagger import Tagger
    from fasttag.tuning import architecture_key, save_tuned

    given = [flag for flag, value in (("--batch-tokens", options.batch_tokens), ("--streams", options.streams),
                                      ("--threads", options.threads)) if value is not None]
    if given:
        raise UsageError(f"--tune chooses {', '.join(given)} itself: leave {'it' if len(given) == 1 else 'them'} out")
    log = log or (lambda message: None)
    deadline = time.perf_counter() + seconds
    options = options.replace(tuned=False)
    with tempfile.TemporaryDirectory(prefix="fasttag-tune-") as tmp:
        # a sample: INPUT's first 600 rows unless --limit, or 600 generated sentences (80 documents) unless --docs
        sample = limit if limit is not None or input is None else TUNE_SAMPLE_ROWS
        corpus = make_corpus(Path(tmp), input, text_column, sample, kind,
                             docs or (TUNE_SAMPLE_ROWS if kind == "sentences" else 80), seed)
        bundle = ModelBundle.load(options.model_dir, revision=options.revision, precision=options.precision,
                                  device=options.device)
        out = Path(tmp) / "out.parquet"
        taggers: dict[tuple[int, int], Any] = {}

        def tagger_for(setting: BatchSetting):
            key = (setting.threads, setting.streams)
            if key not in taggers:
                taggers.clear()  # one set of sessions at a time
                taggers[key] = Tagger(bundle, options.replace(threads=setting.threads, streams=setting.streams))
                _time_pass(taggers[key], corpus, out)  # warm-up
            tagger = taggers[key]
            if tagger.provider != "CPUExecutionProvider":
                raise UsageError("--tune sweeps CPU settings; this run uses the GPU (pass --device cpu to tune the "
                                 "CPU)")
            tagger.batcher = TokenBudgetBatcher(setting.batch_tokens, setting.max_batch_size,
                                                pad_multiple=tagger.batcher.pad_multiple, max_length=tagger.max_length)
            return tagger

        def measure(setting: BatchSetting) -> float:
            times, _ = _time_pass(tagger_for(setting), corpus, out)
            rate = times.tokens / times.seconds
            log(f"{setting.describe()}: {rate:,.0f} tokens/s")
            return rate

        defaults = default_setting()
        watch = CpuWatch().__enter__()  # what other processes took of the CPUs during the sweep
        trials = [Trial(defaults, measure(defaults))]
        default_rates = [trials[0].tokens_per_s]
        best = trials[0]

        def consider(setting: BatchSetting) -> bool:
            nonlocal best
            if time.perf_counter() > deadline:
                return False
            if any(t.setting == setting for t in trials):
                return True
            trial = Trial(setting, measure(setting))
            trials.append(trial)
            if trial.tokens_per_s > best.tokens_per_s:
                best = trial
            return True

        # coordinate search: sessions (threads, streams) at the default batch, then batch tokens, then rows
        for threads, streams in candidate_threads(defaults.threads):
            if not consider(BatchSetting(defaults.batch_tokens, defaults.max_batch_size, streams, threads)):
                break
        base = best.setting
        for tokens in BATCH_TOKENS:
            if not consider(BatchSetting(tokens, base.max_batch_size, base.streams, base.threads)):
                break
        base = best.setting
        for rows in BATCH_ROWS:
            if not consider(BatchSetting(base.batch_tokens, rows, base.streams, base.threads)):
                break
        # the defaults and the best, alternately, once more each (up to three times while the budget allows)
        best_rates = [best.tokens_per_s]
        if best.setting != defaults:
            for _ in range(3):
                default_rates.append(measure(defaults))
                best_rates.append(measure(best.setting))
                if time.perf_counter() > deadline:
                    break
        else:
            best_rates = default_rates
        watch.__exit__()
        winner = pick_best(defaults, default_rates, best.setting, best_rates)
        arch = architecture_key(bundle)
        here = machine()
        here.others = watch.others
        result = TuneResult(here.key(), arch, here.busy(), defaults, winner, default_rates,
                            best_rates if winner != defaults else default_rates, trials)
        if save:
            result.path = save_tuned(result.machine_key, arch, winner, {
                "tokens_per_s": float(np.median(result.best_rates)),
                "default_tokens_per_s": float(np.median(default_rates)),
                "corpus": corpus.name, "fasttag": __version__, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime())})
        return result
