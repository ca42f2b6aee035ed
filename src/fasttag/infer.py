"""Run model windows through onnxruntime and return per-token probabilities."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import sys
from pathlib import Path

import numpy as np

from fasttag.errors import ModelError, UsageError, first_line
from fasttag.model import ALLOWED_INPUTS
from fasttag.options import DEVICES, Device

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# Grow the CUDA arena only by what is asked: with bucketed sequence lengths it stays bounded.
CUDA_OPTIONS = {"arena_extend_strategy": "kSameAsRequested", "cudnn_conv_algo_search": "HEURISTIC"}
# Graph fusions left out on the CPU provider because its kernel for the fused operator is slower than the operators it
# replaces. SkipLayerNormalization (a residual Add and a LayerNormalization in one): in onnxruntime 1.31.1, 630 us
# against 95-110 us for the two operators on 320 tokens x 384, one thread; through `fasttag run`, the int8 default
# model 1.15x as fast without it on sentences and 1.08x on ~300-word texts (2-core AMD EPYC; bench/cpu_fusions.py
# measures both on any machine). fp32 graphs of BERT-like models get no such node. The CUDA provider keeps every fusion.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
# CPU sessions run without onnxruntime's memory patterns: a session keeps one allocation plan per input shape it has
# met, and batches of texts come in many shapes (rows x tokens), so with them peak RSS kept growing with the corpus:
# the int8 default model on distinct generated sentences, 323 MB at 2,000 rows, 340 at 5,000, 360 at 20,000, 382
# at 50,000, 397 at 200,000; without them 323, 336, 333, 338 and 348 MB, at the same speed (pass times
# 0.995x on sentences, 0.968x on ~300-word texts; 2-core AMD EPYC Zen 5, bench/rss.py, bench/RESULTS.md). The
# CUDA provider keeps them (its shapes are bucketed: few of them).
CPU_MEMORY_PATTERNS = False


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


class OnnxModel:
    """One onnxruntime session; `run(input_ids, attention_mask)` returns logits (batch, seq, labels)."""

    def __init__(self, path: Path, device: Device = "auto", threads: int | None = None):
        import onnxruntime as ort

        if device not in DEVICES:
            raise UsageError(f"device must be one of {', '.join(DEVICES)}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: a missing CUDA library is reported by us, in one line
        available = ort.get_available_providers()
        want_cuda = device in ("cuda", "tensorrt") or (device == "auto" and "CUDAExecutionProvider" in available)
        no_driver = device == "auto" and want_cuda and not cuda_driver_loads()
        if no_driver:  # the GPU wheel on a machine without a GPU: no CUDA session to try and build for nothing
            want_cuda = False
        needed = "TensorrtExecutionProvider" if device == "tensorrt" else "CUDAExecutionProvider"
        if device in ("cuda", "tensorrt") and needed not in available:
            raise UsageError(
                f"--device {device}: this onnxruntime has no {needed} "
                f"(available: {', '.join(available)}); install onnxruntime-gpu"
            )
        providers: list = ["CPUExecutionProvider"]
        if want_cuda:
            providers = [("CUDAExecutionProvider", CUDA_OPTIONS), "CPUExecutionProvider"]
            if device == "tensorrt":
                providers.insert(0, ("TensorrtExecutionProvider", {"trt_fp16_enable": True}))
        self.note = ""
        if want_cuda:
            # A missing CUDA library is logged by onnxruntime's default logger; we report it ourselves, in one line.
            ort.set_default_logger_severity(4)
        ep_errors = io.StringIO()
        disabled = [] if want_cuda else list(CPU_DISABLED_OPTIMIZERS)
        if not want_cuda:
            opts.enable_mem_pattern = CPU_MEMORY_PATTERNS
        try:
            # onnxruntime prints a failed provider's "EP Error" banner to stdout, which may be our output (-o -)
            with contextlib.redirect_stdout(ep_errors):
                self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers,
                                                    disabled_optimizers=disabled)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph classes
            if want_cuda and device == "auto":
                self.session = self._cpu_session(ort, path, opts)
                self.note = f"CUDA unusable ({first_line(exc)[:120]}); using CPU"
            else:
                raise ModelError(f"cannot load {path}: {first_line(exc)}") from exc
        finally:
            ort.set_default_logger_severity(2)
        if want_cuda and device == "auto" and not self.note and self.session.get_providers()[0] not in GPU_PROVIDERS:
            # onnxruntime fell back to the CPU by itself: that session has the fusions the CPU runs slower
            self.session = self._cpu_session(ort, path, opts)
        self.provider = self.session.get_providers()[0]
        captured = ep_errors.getvalue()
        ep_error = captured[captured.index("Please install"):].split(",")[0] if "Please install" in captured else ""
        if device == "tensorrt" and self.provider != "TensorrtExecutionProvider":
            raise UsageError(f"--device tensorrt: the TensorRT execution provider could not be initialised"
                             f"{' (' + ep_error[:300] + ')' if ep_error else ' (see the TensorRT setup)'}")
        if device == "cuda" and self.provider not in GPU_PROVIDERS:
            raise UsageError(
                "--device cuda: the CUDA execution provider could not be initialised (see CUDA/cuDNN setup)")
        if (no_driver or want_cuda and self.provider != "CUDAExecutionProvider") and not self.note:
            self.note = "CUDA provider could not start (no GPU or CUDA libraries); using CPU"
        inputs = {i.name: i for i in self.session.get_inputs()}
        unexpected = set(inputs) - ALLOWED_INPUTS
        if unexpected or "input_ids" not in inputs:
            raise ModelError(
                f"{path}: unexpected ONNX inputs {sorted(inputs)}; expected input_ids, attention_mask "
                "and optionally token_type_ids (export with 'fasttag export')"
            )
        self.input_names = set(inputs)
        outputs = self.session.get_outputs()
        self.output_name = "logits" if any(o.name == "logits" for o in outputs) else outputs[0].name
        # On a GPU, I/O binding lets onnxruntime place inputs and outputs without extra copies.
        self.on_gpu = self.provider in GPU_PROVIDERS

    @staticmethod
    def _cpu_session(ort, path, opts):
        opts.enable_mem_pattern = CPU_MEMORY_PATTERNS
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"],
                                        disabled_optimizers=list(CPU_DISABLED_OPTIMIZERS))
        except Exception as exc:
            raise ModelError(f"cannot load {path}: {first_line(exc)}") from exc

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids}
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = attention_mask
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        if self.on_gpu:
            binding = self.session.io_binding()
            for name, array in feed.items():
                binding.bind_cpu_input(name, array)
            binding.bind_output(self.output_name, "cpu")
            self.session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0]
        (logits,) = self.session.run([self.output_name], feed)
        return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax in float32, computed as transformers' pipeline does (shift by the max)."""
    logits = logits.astype(np.float32, copy=False)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@functools.cache
def cuda_driver_loads() -> bool:
    """Whether the NVIDIA driver's library loads (Linux: libcuda.so.1), without which onnxruntime's CUDA provider
    cannot start; elsewhere, assumed so (onnxruntime is asked)."""
    if not sys.platform.startswith("linux"):
        return True
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def default_threads() -> int | None:
    return env_int("FASTTAG_THREADS")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_streams(threads: int) -> int:
    """Concurrent onnxruntime sessions on CPU: 2 when there are 2 threads or more (env FASTTAG_STREAMS)."""
    return env_int("FASTTAG_STREAMS") or (2 if threads >= 2 else 1)


def env_int(name: str) -> int | None:
    """A positive integer from the environment, None when unset or empty."""
    env = os.environ.get(name, "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) < 1:
        raise UsageError(f"{name} must be a positive integer, got {env!r}")
    return int(env)
