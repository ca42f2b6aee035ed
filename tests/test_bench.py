"""`fasttag bench` and `--tune` (fasttag.bench, fasttag.tuning, fasttag.machine, fasttag.synthetic)."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import Tagger, synthetic
from fasttag.bench import bench, bootstrap, candidate_threads, default_setting, pick_best
from fasttag.cli import cli
from fasttag.errors import MissingExtraError, UsageError
from fasttag.machine import cpu_info, machine
from fasttag.options import EngineOptions
from fasttag.stages import STAGES
from fasttag.tuning import BatchSetting, architecture_key, load_tuned, save_tuned, tuned_path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture()
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTTAG_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def test_generated_corpus_is_reproducible_with_realistic_lengths():
    a, b = synthetic.sentences(500, seed=3), synthetic.sentences(500, seed=3)
    assert a == b and a != synthetic.sentences(500, seed=4)
    lengths = np.array([len(s.split()) for s in a])
    assert 8 <= np.median(lengths) <= 18 and lengths.max() > 30 and lengths.min() >= 2
    docs = synthetic.documents(20, seed=1)
    words = np.array([len(d.split()) for d in docs])
    assert 240 <= words.mean() <= 360
    with pytest.raises(ValueError, match="corpus must be one of"):
        synthetic.corpus("tweets", 3)


def test_bootstrap_interval_holds_the_mean():
    rate = bootstrap(np.array([100.0, 110.0, 90.0, 105.0]))
    assert rate.low <= rate.mean <= rate.high and rate.low < rate.high and rate.mean == pytest.approx(101.25)
    single = bootstrap(np.array([7.0]))
    assert single.low == single.mean == single.high == 7.0


def test_cpu_flags_from_cpuinfo():
    intel = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\n"
             "flags\t\t: fpu sse avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8 amx_bf16\n")
    cpu, flags = cpu_info(intel)
    assert cpu == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert flags == ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"]
    assert cpu_info("model name : AMD EPYC 7B13\nflags : fpu avx2 fma\n") == ("AMD EPYC 7B13", ["avx2", "fma"])
    here = machine()
    assert here.cores >= 1 and here.onnxruntime and "CPUExecutionProvider" in here.providers
    assert here.key() != here.key("CUDAExecutionProvider")


def test_bench_times_the_run_path(bert_export):
    result = bench(EngineOptions(model_dir=str(bert_export), threads=1), kind="sentences", docs=40, passes=3,
                   warmup=1)
    assert len(result.passes) == 3 and result.docs == 40 and result.tokens > result.docs
    rates = result.rates()
    for rate in rates.values():
        assert 0 < rate.low <= rate.mean <= rate.high
    assert rates["tokens"].mean > rates["words"].mean > rates["docs"].mean
    shares = result.stages.shares()
    assert sum(shares.values()) == pytest.approx(1.0) and all(shares[s] > 0 for s in STAGES)
    assert 0 <= result.stages.padding_share < 1
    # the tagger's clock counts the timed passes only: 3 x the corpus's tokens, padding on top
    assert result.stages.model_tokens - result.stages.padding_tokens >= 3 * result.tokens
    assert result.setting == BatchSetting(1024, 16, 1, 1)
    text = "\n".join(result.lines())
    assert "tokens/s (95% CI" in text and "padding:" in text and "stages: read" in text


def test_bench_cli_json_and_input(bert_export, tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"body": synthetic.documents(6, seed=2)}), src)
    res = invoke("bench", src, "--text-column", "body", "--model", bert_export, "--passes", "2", "--warmup", "0",
                 "--device", "cpu",
                 "--json", "-", "-q")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["docs"] == 6 and len(data["pass_seconds"]) == 2 and data["corpus"].startswith(str(src))
    assert set(data["stage_shares"]) == set(STAGES) and data["machine"]["cpu"]
    assert data["provider"] == "CPUExecutionProvider" and data["fusions_left_out"] == ["SkipLayerNormFusion"]
    assert data["rates"]["words"]["low"] <= data["rates"]["words"]["mean"] <= data["rates"]["words"]["high"]
    res = invoke("bench", "--model", bert_export, "--docs", "10", "--passes", "1", "--corpus", "documents",
                 "--device", "cpu",
                 "--json", tmp_path / "b.json")
    assert res.exit_code == 0, res.output
    assert "machine:" in res.output and "generated documents" in res.output
    assert "onnxruntime fusions not applied: SkipLayerNormFusion (slower kernels on the CPU)" in res.output
    assert json.loads((tmp_path / "b.json").read_text())["docs"] == 10


def test_bench_errors_are_one_line(bert_export, tmp_path, monkeypatch):
    res = invoke("bench", "-", "--model", bert_export)
    assert res.exit_code == 2 and "not stdin" in res.output
    res = invoke("bench", tmp_path / "missing.parquet", "--model", bert_export)
    assert res.exit_code == 1 and "does not exist" in res.output and "Traceback" not in res.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = invoke("bench", empty, "--model", bert_export)
    assert res.exit_code == 2 and "corpus is empty" in res.output
    # the tiny export was made from a local checkpoint the pipeline cannot find by itself (torch or not: the fast
    # lane runs without it)
    monkeypatch.setattr("fasttag.bench.missing_modules", lambda names: [])
    res = invoke("bench", "--model", bert_export, "--compare", "pipeline", "--docs", "5")
    assert res.exit_code == 2 and "pass --checkpoint DIR" in res.output
    monkeypatch.setattr("fasttag.bench.missing_modules", lambda names: ["torch"])
    res = invoke("bench", "--model", bert_export, "--compare", "pipeline", "--docs", "5")
    assert res.exit_code == 1 and "needs the 'train' extra" in res.output and len(res.output.strip().splitlines()) == 1
    with pytest.raises(MissingExtraError, match="torch"):
        bench(EngineOptions(model_dir=str(bert_export)), docs=5, compare="pipeline")
    res = invoke("bench", "--tune", "--compare", "pipeline", "--model", bert_export)
    assert res.exit_code == 2 and "choose one" in res.output
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "Ada Lovelace lives in London."}\n')
    res = invoke("bench", corpus, "--model", bert_export, "--json", corpus)
    assert res.exit_code == 2 and "is the input" in res.output and "overwritten" in res.output
    assert corpus.read_text() == '{"text": "Ada Lovelace lives in London."}\n'  # the corpus is whole
    # a --json the end could not write is refused before the passes (and the tune), not after them
    report = tmp_path / "nodir" / "b.json"
    for extra in ([], ["--tune"]):
        res = invoke("bench", "--model", tmp_path / "no-model", "--json", report, *extra)
        assert res.exit_code == 2 and res.output.strip() == f"Error: the folder of {report} does not exist"
    res = invoke("bench", "--model", tmp_path / "no-model", "--json", tmp_path)
    assert res.exit_code == 2 and "is a folder; give a file path" in res.output


def test_compare_pipeline_prints_the_ratio(checkpoint_factory, bert_export):
    checkpoint = checkpoint_factory("bert")
    result = bench(EngineOptions(model_dir=str(bert_export), threads=1), docs=30, passes=2, compare="pipeline",
                   checkpoint=str(checkpoint))
    c = result.compare
    assert c["docs_per_s"] > 0 and c["threads"] == 1 and c["aggregation"] == "first"
    assert c["ratio"] == pytest.approx(result.rates()["docs"].mean / c["docs_per_s"])
    assert "fasttag/pipeline" in "\n".join(result.lines())


def test_pick_best_never_takes_a_setting_slower_than_the_defaults():
    d, b = BatchSetting(1024, 16, 2, 2), BatchSetting(2048, 32, 1, 2)
    assert pick_best(d, [100, 101, 99], b, [99, 140, 98]) == d  # faster once, not in the median
    assert pick_best(d, [100, 101, 99], b, [101, 101, 102]) == d  # within the 2% margin
    assert pick_best(d, [100, 101, 99], b, [110, 108, 111]) == b
    assert candidate_threads(1) == [(1, 1)]
    assert candidate_threads(4) == [(4, 1), (4, 2), (4, 4), (2, 1), (2, 2)]


def test_tune_saves_a_setting_that_run_uses(bert_export, tmp_path, config_dir):
    res = invoke("bench", "--tune", "--tune-seconds", "2", "--docs", "30", "--model", bert_export, "--json",
                 tmp_path / "tune.json")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "tune.json").read_text())
    assert data["trials"][0] == {**default_setting().__dict__, "tokens_per_s": data["trials"][0]["tokens_per_s"]}
    assert data["saved"] == str(tuned_path()) and tuned_path().parent == config_dir
    bundle = Tagger.load(bert_export).bundle
    found = load_tuned(machine().key(), architecture_key(bundle))
    assert found is not None and found[0] == BatchSetting(**data["best"])
    if found[0] != default_setting():
        assert data["speedup"] >= 1.02
    # run uses it, and says so in its first line; a batch option or --ignore-tuned leaves it out
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Ada Lovelace was born in London."}) + "\n")
    res = invoke("run", src, "-o", tmp_path / "a.parquet", "--model", bert_export)
    assert res.exit_code == 0 and res.output.splitlines()[0].endswith(found[0].describe())
    assert "tuned setting from" in res.output.splitlines()[0]
    for extra in (["--ignore-tuned"], ["--batch-tokens", "512"], ["--threads", "1"]):
        res = invoke("run", src, "-o", tmp_path / "b.parquet", "--model", bert_export, "--overwrite", *extra)
        assert res.exit_code == 0 and "tuned" not in res.output, extra


def test_tuned_settings_apply_by_machine_and_architecture(bert_export, config_dir):
    bundle = Tagger.load(bert_export).bundle
    assert architecture_key(bundle) == "bert-L2-H32-fp32"
    save_tuned("another machine", architecture_key(bundle), BatchSetting(64, 2, 1, 1), {})
    save_tuned(machine().key(), "roberta-L12-H768-int8", BatchSetting(64, 2, 1, 1), {})
    assert Tagger.load(bert_export, tuned=True).tuned is None
    save_tuned(machine().key(), architecture_key(bundle), BatchSetting(64, 2, 1, 1), {"tokens_per_s": 1.0})
    tagger = Tagger.load(bert_export, tuned=True)
    assert tagger.tuned and (tagger.batcher.budget_tokens, tagger.batcher.max_batch_size, tagger.streams) == (64, 2, 1)
    assert Tagger.load(bert_export).tuned is None  # the API uses them only when asked
    assert Tagger.load(bert_export, tuned=True, device="cpu", max_batch_size=4).batcher.budget_tokens == 1024
    tuned_path().write_text("{not json")
    with pytest.raises(UsageError, match="cannot read the tuned settings"):
        Tagger.load(bert_export, tuned=True)


def test_tune_refuses_the_options_it_sweeps(bert_export):
    res = invoke("bench", "--tune", "--model", bert_export, "--batch-tokens", "512")
    assert res.exit_code == 2 and "--tune chooses --batch-tokens itself" in res.output


def test_compare_onnxruntime_alone_on_the_same_batches(bert_export):
    result = bench(EngineOptions(model_dir=str(bert_export), threads=1), docs=60, passes=2, warmup=0,
                   compare="onnxruntime")
    c = result.compare
    assert c["system"] == "onnxruntime" and c["batches"] >= 60 * 14 // 1024 and len(c["pass_seconds"]) == 2
    # the share pass by pass: each fasttag pass against the onnxruntime pass run beside it
    shares = [alone / t.seconds for alone, t in zip(c["pass_seconds"], result.passes, strict=True)]
    assert c["ratio"] == pytest.approx(np.mean(shares)) and c["ratio_ci"][0] <= c["ratio"] <= c["ratio_ci"][1]
    assert c["docs_per_s"] == pytest.approx(np.mean([60 / s for s in c["pass_seconds"]]))
    assert "fasttag at" in "\n".join(result.lines()) and "95% CI" in "\n".join(result.lines())
    assert c["padded_tokens"] * 2 == result.stages.model_tokens  # the very batches fasttag ran, pass by pass
    with pytest.raises(UsageError, match="--compare takes pipeline or onnxruntime"):
        bench(EngineOptions(model_dir=str(bert_export)), docs=5, compare="spacy")


def test_compare_onnxruntime_leaves_out_the_duplicates_fasttag_leaves_out(tmp_path, bert_export):
    corpus = tmp_path / "twice.jsonl"
    texts = varied_sentences(40, seed=5)
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts + texts[:30]))
    counts = {}
    for window in (None, 0):
        result = bench(EngineOptions(model_dir=str(bert_export), threads=1, dedup_window=window), str(corpus),
                       passes=1, warmup=0, compare="onnxruntime")
        assert result.compare["padded_tokens"] == result.stages.model_tokens
        counts[window] = result.compare["padded_tokens"]
    assert counts[None] < counts[0]  # the window on (the default): 30 rows copied, not inferred


def test_bench_measures_the_tuned_setting_unless_told_not_to(bert_export, config_dir):
    bundle = Tagger.load(bert_export).bundle
    save_tuned(machine().key(), architecture_key(bundle), BatchSetting(256, 4, 1, 1), {})
    res = invoke("bench", "--model", bert_export, "--docs", "10", "--passes", "1", "--json", "-", "-q")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["setting"] == {"batch_tokens": 256, "max_batch_size": 4, "streams": 1, "threads": 1}
    assert data["tuned"].startswith("tuned setting from")
    res = invoke("bench", "--model", bert_export, "--docs", "10", "--passes", "1", "--json", "-", "-q",
                 "--ignore-tuned")
    assert json.loads(res.output)["setting"] == default_setting().__dict__ and json.loads(res.output)["tuned"] is None


def test_a_busy_machine_is_said_to_be_one(bert_export, monkeypatch):
    from fasttag.machine import Machine

    assert Machine("cpu", 2, load=3.5).busy() and not Machine("cpu", 2, load=0.4).busy()
    assert not Machine("cpu", 2).busy() and "load average 3.5" in Machine("cpu", 2, load=3.5).describe()
    # measured: the share of the CPUs other processes used during the timed passes, not the load average
    # (which counts the benchmark's own threads, and those of whatever ran the minute before)
    assert Machine("cpu", 2, load=3.5, others=0.02).busy() is False and Machine("cpu", 2, others=0.4).busy()
    assert "other processes used 40% of the CPUs" in Machine("cpu", 2, others=0.4).describe()


@pytest.mark.slow  # needs the CPUs to itself for its quiet half: the fast lane runs in parallel (pytest -n auto)
def test_other_processes_on_the_cpus_are_measured_and_warned_about(bert_export):
    """A process spinning on every CPU during the timed passes: the bench says the machine was busy."""
    import multiprocessing
    import os

    from fasttag.machine import CpuWatch

    # /proc/stat counts in ticks of 10 ms: each watched block lasts long enough for a tick not to matter
    with CpuWatch() as quiet:
        deadline = time.perf_counter() + 0.5
        while time.perf_counter() < deadline:
            pass
    assert quiet.others is not None and quiet.others < 0.9
    stop, started = multiprocessing.Event(), multiprocessing.Queue()
    spinners = [multiprocessing.Process(target=_spin, args=(stop, started)) for _ in range(os.cpu_count() or 1)]
    for p in spinners:
        p.start()
    try:
        for _ in spinners:  # every spinner spinning before the timed passes begin
            started.get(timeout=60)
        result = bench(EngineOptions(model_dir=str(bert_export), threads=1), docs=600, passes=3, warmup=0)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    assert sum(p.seconds for p in result.passes) > 0.2  # the watched passes span many ticks
    assert result.machine.others is not None and result.machine.others > 0.3
    assert result.machine.busy() and result.lines()[-1].startswith("warning: other processes held the CPUs")


def _spin(stop, started) -> None:
    started.put(True)
    while not stop.is_set():
        pass


BENCH = Path(__file__).parent.parent / "bench"


def _script(name, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(BENCH / name), *map(str, args)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_bench_scripts_print_their_ratios(bert_export):
    out = _script("dedup.py", "--model", bert_export, "--rows", "300", "--rounds", "1")
    assert "same output as without the window: True" in out and "speed ratio repeated / distinct:" in out
    share = int(re.search(r"duplicate rows \((\d+)%\) tagged once", out).group(1))
    assert 20 <= share <= 40, out
    out = _script("fusions.py", "--a", bert_export, "--b", bert_export, "--rows", "100", "--rounds", "2")
    assert "rows with the same entities: 100.0%" in out and "speed ratio B / A:" in out
    out = _script("rss.py", "--model", bert_export, "--generated", "--rows", "200", "--factor", "3")
    assert "ratio 3x corpus / 1x corpus peak RSS" in out
    out = _script("cpu_fusions.py", "--model", bert_export, "--rows", "100", "--rounds", "2")
    fused, unfused = map(float, re.search(r"SkipLayerNormFusion: fused ([\d.]+) us, unfused ([\d.]+) us", out).groups())
    assert fused > 0 and unfused > 0 and "off vs on:" in out, out
    # tiny-bert's fp32 graph gets no SkipLayerNormalization node either way: the same entities on every row
    assert "same entities on 100 of 100 rows" in out, out
    out = _script("stream.py", "--model", bert_export, "--rows", "100", "--rounds", "1", "--chunk-rows", "16",
                  "--threads", "1")  # one session: the session-in-this-thread variant runs too
    assert "stream: the same entities (offsets, labels, scores) as chunk by chunk on 100 of 100 rows" in out, out
    assert "stream, session here: the same entities" in out and "chunk by chunk vs stream:" in out, out
    out = _script("agreement.py", bert_export, bert_export, "--rows", "40", "--threads", "1")
    assert re.search(r"^[\d,]+ tokens in \d+ batches$", out, re.M), out
    assert "argmax agrees on 100.000% of tokens; |logit difference| mean 0.0000, max 0.000" in out, out


def test_bench_dedup_window_option_turns_the_window_off(tmp_path, bert_export):
    corpus = tmp_path / "twice.jsonl"
    texts = varied_sentences(20, seed=6)
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts + texts))
    found = {}
    for extra in ([], ["--dedup-window", "0"]):
        res = CliRunner().invoke(cli, ["bench", str(corpus), "--model", str(bert_export), "--passes", "1",
                                       "--warmup", "0", "--ignore-tuned", "--json", "-", "-q", *extra])
        assert res.exit_code == 0, res.output
        found[bool(extra)] = json.loads(res.output)["duplicates_per_pass"]
    assert found == {False: 20, True: 0}
