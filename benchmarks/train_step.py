"""Speed and peak memory of one full training step of Uni-Perceiver against CLIP, on CPU.

One step is what the trainer does per batch: `zero_grad`, `UniPerceiverForPreTraining(...).loss`, `backward`,
`AdamW.step` (fused, the Trainer's default `optim`; weight decay off for norms, biases, embeddings and scales, as
`no_weight_decay_parameter_names`; the token table with sparse gradients and `RowwiseAdamW`, the trainer's default
`embedding_update="rowwise"`; padded texts in the trainer's `length_groups`, which the benchmark's texts of equal
length leave as one batch).

The DEFAULT size is the shipped default model's (models/uniperceiver-tiny-emoji: 4 x 256, 64 px images, the real
49,411-id vocabulary; 16.1M parameters, 12.6M of them the token table), batch 32, fp32, gradients clipped at 5.0 as
the trainer does. Per task, four steps alternate in one process so that all see the same machine load: main's step
(dense token-table gradients, fused AdamW on every parameter) with one thread, as the default model was trained
(`OMP_NUM_THREADS=1`), and with `--threads`; the trainer's row-wise step; and (retrieval) transformers' `CLIPModel`
with two towers of the same width and depth doing its contrastive step on the same images and captions; on a CPU
with native bf16 also the row-wise step under bf16 autocast (opt-in `bf16=True`, shown for information). Then main's
step and the row-wise step train side by side from the same initialisation on a cycle of four batches (the loss
curves, `--curve-steps`). Each step's share of matrix multiplications (torch.profiler over 3 more steps) says how much
of it is left for anything but faster or fewer multiplications.

The rest is measured for a TINY model (2 layers x 64, 4 heads, 32 px images) and the BASE preset (12 x 768, 12 heads,
224 px images), random weights, training mode (drop path 0.1, the preset's), on three task types:

- classification: a batch of images against a class-name target set (default 100 names, label smoothing 0.1);
- caption: image + caption in the appendix-B layout (every word predicted from its `<SPE>`), scored against the
  vocabulary SAMPLED as the recipe's `vocabulary: sampled` does (the batch's words plus 4096 random ids as
  `target_input_ids`, labels re-indexed). The exact 49,411-entry vocabulary, encoded with gradient in every step,
  does not fit in this machine's memory at base size; `--caption-vocabulary exact` measures it where it fits;
- retrieval: images against their captions, in-batch negatives, both directions (label smoothing 0.1).

Beside ours, transformers' `CLIPModel` (random init, `return_loss=True`, SDPA) does its contrastive step on the
same images and captions at the same batch: ViT-B/16 vision with CLIP's default text tower at base, a tiny CLIP of
our tiny sizes at tiny. Every configuration runs in fp32 and under bf16 autocast (`torch.autocast("cpu")`), with
and without activation (gradient) checkpointing; the table says whether the encoder layers were really
recomputed in the backward pass (calls of layer 0's first LayerNorm counted during `backward`). On a CPU without
native bf16 (no AVX512-BF16 or AMX) bf16 matmuls are emulated, many times slower than fp32, so bf16 at base is
skipped there unless `--precisions fp32,bf16` asks for it.

Each configuration runs in a fresh process, forked from a server that has only imported the libraries. Memory: the
first step's peak RSS (VmHWM) minus the RSS just before it, when the model, the batch and AdamW's two moments (a
fixed cost like the weights, allocated up front) exist; so it counts activations, gradients and transient buffers.
During that step glibc maps every allocation of 128 KiB or more on its own (`mallopt`), so that RSS follows live
tensors instead of what the heap keeps after frees. Speed: the median of several timed steps after it (fewer when
they exceed `--budget`), the heap serving allocations below 32 MiB as glibc's adaptive threshold does once warm.
The speed ratio to CLIP comes from one more process per setting in which our retrieval step and CLIP's alternate,
so that both see the same machine load. Children inherit `OMP_WAIT_POLICY` as the trainer does (unset: OpenMP's
default, threads spin a while before they sleep); on a shared, oversubscribed CPU `OMP_WAIT_POLICY=PASSIVE` keeps
waiting threads off the cores the others need (spinning made small steps there up to ten times slower and erratic),
at ~20 % of a default-size step's time on an idle machine.

    python benchmarks/train_step.py --sizes default # the default model before/after, CLIP, loss curves (~5 min)
    python benchmarks/train_step.py                 # default, tiny and base (about 30 min on 2 shared cores)
    python benchmarks/train_step.py --quick         # tiny, batch 4, 2 steps: a smoke run of a minute
    python benchmarks/train_step.py --sizes base --tasks retrieval --steps 5 --precisions fp32,bf16
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import multiprocessing
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, replace

import torch
import transformers


SIZES = ("default", "tiny", "base")
TASKS = ("classification", "caption", "retrieval")
PRECISIONS = ("fp32", "bf16")
MODELS = ("ours", "CLIP")
DEFAULT_BATCH = {"default": 32, "tiny": 32, "base": 8}
DEFAULT_STEPS = {"default": 7, "tiny": 5, "base": 3}
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
# The default model this benchmark was written for (its previous recipe, before the convolutional stem and the frame
# differences, which benchmarks/convolutional_stem.py times): its tower sizes, which CLIP's two towers copy, and the
# rest of its config.
DEFAULT_TOWER = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
DEFAULT_MODEL = dict(DEFAULT_TOWER, image_size=64, patch_size=16, max_position_embeddings=64, drop_path_rate=0.05,
                     layer_scale_init_value=0.1)  # fmt: skip
IMAGE_SIZE = {"default": 64, "tiny": 32, "base": 224}
PROJECTION = {"default": 256, "tiny": 64, "base": 512}
DEFAULT_VOCABULARY_SAMPLES = {"default": 255, "tiny": 4096, "base": 4096}  # the default model's recipe: 255
BASE_VISION = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)  # ViT-B
SOT, EOT = 49406, 49407  # CLIP's start/end-of-text ids (our tokenizer is CLIP's BPE)
CHILD_IMPORTS = ["torch", "transformers", "transformers.models.clip.modeling_clip",
                 "uniperceiver_hf.pretraining_uniperceiver", "uniperceiver_hf.training.trainer",
                 "uniperceiver_hf.training.optim"]  # fmt: skip
PAIR = "ours+CLIP"  # the interleaved speed run of the retrieval pair
# The default model's before/after run: these training steps alternate in one process (see `variant_trainee`).
SPEEDUP = "speedup"
VARIANTS = ("main, 1 thread", "main", "row-wise", "CLIP", "row-wise, bf16 autocast")
BF16 = "row-wise, bf16 autocast"  # informational, on CPUs with native bf16 only: not the trainer's default
CURVE = "loss curve"  # main's and the row-wise step trained side by side on a cycle of different batches
CURVE_BATCHES = 4
SPEEDUP_TARGET = 2.0  # row-wise samples/s over main's, as the default model was trained
CLIP_TIME_TARGET = 1.2  # row-wise step time over CLIP's, at most
# Matrix multiplications in torch.profiler's self CPU time (the linears' forward and backward, attention's products).
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
PROFILED_STEPS = 3
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
SMALL_MMAP, LARGE_MMAP = 128 * 1024, 32 * 1024 * 1024  # glibc's default threshold and its adaptive ceiling
SPEED_TARGET = 1.0  # our retrieval steps/s over CLIP's, same batch
UNSET_WAIT_POLICY = "unset (OpenMP's default, as examples/pretrain.py runs)"
MEMORY_TARGET = 0.5  # peak memory with checkpointing over without, at base

ADJECTIVES = ("red", "small", "old", "wooden", "striped", "green", "tall", "shiny", "broken", "yellow")
NOUNS = ("dog", "cat", "car", "tree", "house", "boat", "chair", "table", "bird", "horse", "bicycle", "lamp", "cup",
         "bridge", "flower", "train", "clock", "guitar", "kite", "apple")  # fmt: skip
FILLERS = ("a", "the", "on", "in", "near", "with", "is", "two", "under", "next", "to", "sitting", "standing",
           "parked", "beside", "of", "and", "holding", "street", "field")  # fmt: skip


@dataclass(frozen=True)
class Spec:
    """One configuration, as the parent hands it to a child process."""

    size: str
    task: str
    model: str
    precision: str
    checkpointing: bool
    batch_size: int
    steps: int
    warmup: int
    threads: int
    classes: int
    vocabulary: str  # "exact" or "sampled" (caption only)
    vocabulary_samples: int
    caption_words: int
    budget_s: float  # timed steps stop early once the next one would end past this (at least one is timed)


# ----------------------------------------------------------------------------------------------------------------------
# Child: build one configuration and time its steps


def memory_mb(field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of this process from /proc, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def captions(count: int, words: int, rng: random.Random) -> list[str]:
    """Caption-like strings of about `words` words."""
    texts = []
    for _ in range(count):
        text = [rng.choice(ADJECTIVES), rng.choice(NOUNS)]
        while len(text) < words - 2:
            text.append(rng.choice(FILLERS))
        texts.append(" ".join(text + [rng.choice(ADJECTIVES), rng.choice(NOUNS)]))
    return texts


def sampled_vocabulary(labels: torch.Tensor, samples: int, vocab_size: int, rng: random.Random) -> dict:
    """The recipe's sampled vocabulary: the batch's words plus `samples` other random ids as `[id, EOT]` targets,
    labels re-indexed into them (as the collator's `vocabulary: sampled`)."""
    words = sorted(set(labels.tolist()))
    samples = min(samples, vocab_size - len(words))
    others = [word for word in rng.sample(range(vocab_size), samples + len(words)) if word not in labels]
    candidates = torch.tensor(words + others[:samples])
    targets = torch.stack([candidates, torch.full_like(candidates, EOT)], 1)
    return {
        "labels": torch.searchsorted(torch.tensor(words), labels),
        "target_input_ids": targets,
        "target_attention_mask": torch.ones_like(targets),
    }


def build(spec: Spec, seed: int = 0) -> tuple[torch.nn.Module, dict, torch.nn.Module]:
    """(model in training mode, forward kwargs, layer 0's first LayerNorm, whose calls show recomputation).
    Another `seed` draws another batch (and another initialisation)."""
    from transformers import CLIPConfig, CLIPModel

    from uniperceiver_hf import UniPerceiverConfig, UniPerceiverProcessor
    from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining

    rng = random.Random(seed)
    torch.manual_seed(seed)
    image_size = IMAGE_SIZE[spec.size]
    sizes = {"tiny": TINY, "default": DEFAULT_TOWER}.get(spec.size, {})
    if spec.size == "tiny":
        config = UniPerceiverConfig(**TINY, image_size=image_size, patch_size=16)
    elif spec.size == "default":
        config = UniPerceiverConfig(**DEFAULT_MODEL)
    else:
        config = UniPerceiverConfig.from_preset("base")
    processor = UniPerceiverProcessor()
    batch = {"pixel_values": torch.randn(spec.batch_size, 3, image_size, image_size)}
    texts = captions(spec.batch_size, spec.caption_words, rng)

    if spec.model == "CLIP":
        model = CLIPModel(CLIPConfig(
            text_config=sizes,
            vision_config=dict(sizes or BASE_VISION, image_size=image_size, patch_size=16),
            projection_dim=PROJECTION[spec.size],
            attn_implementation="sdpa",
        ))  # fmt: skip
        ids = processor.target_inputs(texts)  # caption + EOT: CLIP gets SOT in front, as ours gets a prefix <SPE>
        batch["input_ids"] = torch.cat([torch.full((spec.batch_size, 1), SOT), ids["target_input_ids"]], 1)
        batch["attention_mask"] = torch.cat([torch.ones(spec.batch_size, 1, dtype=torch.long),
                                             ids["target_attention_mask"]], 1)  # fmt: skip
        batch["return_loss"] = True
        return model.train(), batch, model.vision_model.encoder.layers[0].layer_norm1

    model = UniPerceiverForPreTraining(config)
    if spec.task == "classification":
        names = [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]
        names = rng.sample(names, spec.classes) if seed else names[: spec.classes]
        batch.update(processor.target_inputs(names), labels=torch.randint(0, len(names), (spec.batch_size,)))
        batch.update(task_type="image_classification", label_smoothing=0.1)
    elif spec.task == "caption":
        layout = processor.caption_training(texts)
        batch.update({key: value for key, value in layout.items() if key != "task"})
        if spec.vocabulary == "sampled":
            batch.update(sampled_vocabulary(batch["labels"], spec.vocabulary_samples, config.vocab_size, rng))
        batch.update(task_type="image_caption")
    else:
        batch.update(processor.target_inputs(texts), task_type="image_text_retrieval", label_smoothing=0.1)
    return model.train(), batch, model.uniperceiver.encoder.layers[0].layer_norm1


def optimizer_for(model: torch.nn.Module, rowwise: bool) -> torch.optim.Optimizer:
    """AdamW as the trainer builds it (fused: `adamw_torch_fused`, the Trainer's default `optim`): `RowwiseAdamW` for
    a model whose token table has sparse gradients (the trainer's default `embedding_update="rowwise"`), plain AdamW
    otherwise (main's step, CLIP). Its state (the two moments) is allocated now, by one step at lr 0 with zero
    gradients: the moments are a fixed cost like the weights, so they are not counted in the step's peak."""
    from uniperceiver_hf.training.optim import RowwiseAdamW
    from uniperceiver_hf.training.trainer import no_weight_decay_parameter_names

    excluded = no_weight_decay_parameter_names(model)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimizer = (RowwiseAdamW if rowwise else torch.optim.AdamW)([
        {"params": [p for name, p in named if name not in excluded], "weight_decay": 0.05},
        {"params": [p for name, p in named if name in excluded], "weight_decay": 0.0},
    ], lr=0.0, fused=True)  # fmt: skip
    for _, parameter in named:
        parameter.grad = torch.zeros_like(parameter)
    if rowwise:  # the table's gradient is sparse: an empty one allocates its row-wise state
        table = model.get_input_embeddings().weight
        table.grad = torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long), torch.zeros(0, table.shape[1]),
                                             table.shape, check_invariants=False)  # fmt: skip
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    for group in optimizer.param_groups:
        group["lr"] = 1e-4
    return optimizer


def set_mmap_threshold(size: int) -> bool:
    """glibc: allocations of at least `size` bytes get their own mapping, returned to the system when freed; below
    it they come from the heap, which keeps freed memory. False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim(0)
        return libc.mallopt(M_MMAP_THRESHOLD, size) == 1
    except (OSError, AttributeError):
        return False


def reset_peak_memory() -> None:
    """Sets this process's VmHWM back to its current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


@dataclass
class Trainee:
    """One model ready to train: `step()` runs one full training step.

    `rowwise`: the token table has sparse gradients and `RowwiseAdamW` updates its looked-up rows (the trainer's
    default); `threads`: torch threads for this trainee's steps (default: the process's); `max_grad_norm`: clip the
    gradients first, as the trainer does (default: no clipping)."""

    model: torch.nn.Module
    batch: dict
    optimizer: torch.optim.Optimizer
    bf16: bool
    rowwise: bool = False
    threads: int | None = None
    max_grad_norm: float | None = None
    probe_calls: int = 0
    last_loss: float = float("nan")

    @classmethod
    def build(cls, spec: Spec, rowwise: bool | None = None, **settings) -> Trainee:
        """`rowwise` defaults to the trainer's own step for our model (`spec.model == "ours"`)."""
        from uniperceiver_hf.training.optim import sparse_embedding_gradients
        from uniperceiver_hf.training.trainer import TRAINER_OPTIONS

        model, batch, probe = build(spec)
        rowwise = spec.model == "ours" if rowwise is None else rowwise
        if rowwise:  # the trainer's step: sparse token-table gradients, padded texts in length groups
            sparse_embedding_gradients(model, True)
            model.uniperceiver.length_groups = TRAINER_OPTIONS["length_groups"]
        if spec.checkpointing:
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
        trainee = cls(model, batch, optimizer_for(model, rowwise), spec.precision == "bf16", rowwise, **settings)
        # A pre-hook: the recomputation stops once it has rebuilt every saved tensor, so it may not finish a module.
        probe.register_forward_pre_hook(lambda *_: setattr(trainee, "probe_calls", trainee.probe_calls + 1))
        return trainee

    def step(self) -> int:
        """One step; returns how many times layer 0 ran during `backward` (recomputation)."""
        from uniperceiver_hf.training.optim import clip_grad_norm_

        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self.optimizer.zero_grad(set_to_none=True)
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
            with autocast:
                loss = self.model(**self.batch).loss
            forward_calls = self.probe_calls
            loss.backward()
            recomputed = self.probe_calls - forward_calls
            if self.max_grad_norm is not None:
                clip = clip_grad_norm_ if self.rowwise else torch.nn.utils.clip_grad_norm_
                clip(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()
        finally:
            torch.set_num_threads(threads)
        self.last_loss = loss.item()
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss {self.last_loss}")
        return recomputed


def variant_trainee(spec: Spec, variant: str) -> Trainee:
    """One of `VARIANTS` at the default model's size, each clipping its gradients at 5.0 as the trainer does:
    main's training step (dense token-table gradients, fused AdamW on every parameter) with one thread, as the
    default model was trained (OMP_NUM_THREADS=1), and with the process's threads; the trainer's step now (row-wise
    token-table updates, the process's threads, which the trainer now sets to every available core); and CLIP of the
    same width and depth doing its contrastive step on the same images and captions. On a CPU with native bf16 also
    the row-wise step under bf16 autocast (`bf16=True`, opt-in: it changes the numerics)."""
    if variant == "CLIP":
        return Trainee.build(replace(spec, model="CLIP"), max_grad_norm=5.0)
    if variant == BF16:  # the trainer's step with `bf16=True` (autocast), an opt-in setting
        return Trainee.build(replace(spec, model="ours", precision="bf16"), rowwise=True, max_grad_norm=5.0)
    threads = 1 if variant == "main, 1 thread" else None
    return Trainee.build(
        replace(spec, model="ours"), rowwise=variant == "row-wise", threads=threads, max_grad_norm=5.0
    )


def loss_curve(spec: Spec) -> dict[str, list[float]]:
    """Main's step and the row-wise step trained side by side from the same initialisation for `spec.steps` steps on
    a cycle of `CURVE_BATCHES` different batches (so the rows each step touches change), at the default recipe's
    learning rate 4e-4, with the same drop-path draws: their losses step by step (and the bf16 row-wise step's, on
    a CPU with native bf16)."""
    variants = ("main", "row-wise", BF16) if native_bf16() else ("main", "row-wise")
    trainees = {variant: variant_trainee(spec, variant) for variant in variants}
    batches = [build(spec, seed)[1] for seed in range(1, CURVE_BATCHES + 1)]
    for trainee in trainees.values():
        for group in trainee.optimizer.param_groups:
            group["lr"] = 4e-4
    losses = {variant: [] for variant in trainees}
    for step in range(spec.steps):
        for variant, trainee in trainees.items():
            trainee.batch = batches[step % CURVE_BATCHES]
            torch.manual_seed(step)
            trainee.step()
            losses[variant].append(trainee.last_loss)
    return losses


def matmul_share(trainee: Trainee, steps: int = PROFILED_STEPS) -> float:
    """The share of `steps` steps' CPU time (torch.profiler, self time on the calling thread) spent in `MATMUL_OPS`:
    the part of a step that removing overhead around the multiplications cannot shorten."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            trainee.step()
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    return sum(event.self_cpu_time_total for event in events if event.key in MATMUL_OPS) / total


def timed_steps(trainees: list[Trainee], spec: Spec) -> list[list[float]]:
    """`spec.steps` timed steps of each trainee, interleaved; fewer once the next round would end past the budget."""
    times = [[] for _ in trainees]
    while len(times[0]) < spec.steps:
        spent = sum(sum(t) for t in times)
        if times[0] and spent + sum(statistics.median(t) for t in times) > spec.budget_s:
            break
        for trainee, elapsed in zip(trainees, times):
            start = time.perf_counter()
            trainee.step()
            elapsed.append(time.perf_counter() - start)
    return times


def run_child(spec: Spec) -> dict:
    torch.set_num_threads(spec.threads)
    transformers.logging.set_verbosity_error()
    if spec.model == CURVE:
        return {"losses": loss_curve(spec)}
    if spec.model == SPEEDUP:  # speed only: the variants alternate steps, so all see the same machine load
        variants = [
            variant
            for variant in VARIANTS
            if (variant != "CLIP" or spec.task == "retrieval") and (variant != BF16 or native_bf16())
        ]
        trainees = [variant_trainee(spec, variant) for variant in variants]
        for trainee in trainees:
            for _ in range(spec.warmup):
                trainee.step()
        times = timed_steps(trainees, spec)
        return {
            "times_s": dict(zip(variants, times)),
            "step_s": {v: statistics.median(t) for v, t in zip(variants, times)},
            "matmul_share": {v: matmul_share(trainee) for v, trainee in zip(variants, trainees)},
        }
    if spec.model == PAIR:  # speed only: ours and CLIP alternate steps, so both see the same machine load
        trainees = [Trainee.build(replace(spec, model=model)) for model in MODELS]
        for trainee in trainees:
            for _ in range(spec.warmup):
                trainee.step()
        times = timed_steps(trainees, spec)
        return {
            "times_s": dict(zip(MODELS, times)),
            "step_s": {m: statistics.median(t) for m, t in zip(MODELS, times)},
        }

    trainee = Trainee.build(spec)
    # The first step measures memory: RSS follows live tensors only when large ones are unmapped as they are freed.
    exact = set_mmap_threshold(SMALL_MMAP)
    gc.collect()
    baseline = memory_mb("VmRSS")
    reset_peak_memory()
    recomputed = trainee.step()
    peak = memory_mb("VmHWM") - baseline
    set_mmap_threshold(LARGE_MMAP)  # the timed steps allocate as by default, from a heap that reuses memory
    for _ in range(spec.warmup - 1):
        trainee.step()
    times = timed_steps([trainee], spec)[0]
    parameters = sum(p.numel() for p in trainee.model.parameters() if p.requires_grad)
    return {
        "step_s": statistics.median(times),
        "times_s": times,
        "peak_mb": peak,
        "exact_rss": exact,
        "recomputed": recomputed > 0,
        "moments_mb": 2 * 4 * parameters / 2**20,
        "gradients_mb": 4 * parameters / 2**20,
    }


# ----------------------------------------------------------------------------------------------------------------------
# Parent: one subprocess per configuration, then the table


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX); without it bf16 matmuls are emulated."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = set(cpuinfo.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def matmul_gflops(dtype: torch.dtype, threads: int) -> float:
    """Throughput of one base FFN matmul on one image's tokens ([197, 768] x [768, 3072])."""
    torch.set_num_threads(threads)
    x, w = torch.randn(197, 768, dtype=dtype), torch.randn(3072, 768, dtype=dtype)
    x @ w.T
    start = time.perf_counter()
    for _ in range(5):
        x @ w.T
    return 5 * 2 * 197 * 768 * 3072 / (time.perf_counter() - start) / 1e9


def child_main(spec: dict, sender) -> None:
    """Runs in a fresh process forked from a server that has only imported the libraries."""
    try:
        sender.send(run_child(Spec(**spec)))
    except Exception as error:  # reported in the table; the other configurations go on
        sender.send({"error": f"{type(error).__name__}: {error}"[:200]})


def run_spec(context: multiprocessing.context.BaseContext, spec: Spec, timeout: float) -> dict:
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=child_main, args=(asdict(spec), sender))
    start = time.perf_counter()
    process.start()
    sender.close()
    result = None
    if receiver.poll(timeout):  # a result, or end of file when the child died
        with contextlib.suppress(EOFError):
            result = receiver.recv()
    else:
        process.kill()
        result = {"error": f"timed out after {timeout:.0f} s"}
    process.join()
    if result is None:
        code = process.exitcode
        result = {"error": f"killed by signal {-code} (out of memory?)" if code < 0 else f"exit {code}"}
    result["wall_s"] = time.perf_counter() - start
    return result


def label(spec: Spec) -> str:
    if spec.model in (SPEEDUP, CURVE):
        task = f"caption ({spec.vocabulary} vocab)" if spec.task == "caption" else spec.task
        return f"{task}, {'before/after interleaved' if spec.model == SPEEDUP else 'loss curve'}"
    if spec.model == PAIR:
        return "retrieval (ours and CLIP interleaved)"
    if spec.model == "CLIP":
        return "retrieval (CLIP)"
    if spec.task == "caption":
        return f"caption ({spec.vocabulary} vocab)"
    return spec.task


def switch(on: bool) -> str:
    return "on" if on else "off"


def summary(result: dict) -> str:
    if "error" in result:
        return result["error"]
    if "losses" in result:
        return ", ".join(
            f"{variant} {losses[0]:.4g} -> {losses[-1]:.4g}" for variant, losses in result["losses"].items()
        )
    if isinstance(result["step_s"], dict):
        return ", ".join(f"{model} {seconds:.3g} s/step" for model, seconds in result["step_s"].items())
    return f"{1 / result['step_s']:.3g} steps/s, peak {result['peak_mb']:.0f} MB ({result['wall_s']:.0f} s)"


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * width for width in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))
    print()


def report_default_model(results: dict[Spec, dict]) -> None:
    """The default model's before/after table, its targets and the loss curves."""
    rows, targets = [], []
    for spec, result in results.items():
        if spec.model != SPEEDUP:
            continue
        if "error" in result:
            rows.append((label(spec), "failed", result["error"], "", "", "", "", ""))
            continue
        seconds = result["step_s"]
        for variant, times in result["times_s"].items():
            clip = f"{seconds[variant] / seconds['CLIP']:.2f}x" if "CLIP" in seconds else ""
            rows.append((label(spec), variant, f"{seconds[variant]:.3g} [{min(times):.3g}-{max(times):.3g}] ({len(times)})",
                         f"{spec.batch_size / seconds[variant]:.1f}", f"{seconds[variant] / seconds['row-wise']:.2f}x",
                         clip, f"{100 * result['matmul_share'][variant]:.0f}%"))  # fmt: skip
        speedup = seconds["main, 1 thread"] / seconds["row-wise"]
        targets.append(
            f"target: >= {SPEEDUP_TARGET:.0f}x samples/s over main's step as the default model was trained "
            f"({spec.task}): {speedup:.2f}x -> {'met' if speedup >= SPEEDUP_TARGET else 'MISSED'} "
            f"({seconds['main'] / seconds['row-wise']:.2f}x over main's step with the same threads)"
        )
        if "CLIP" in seconds:
            ratio = seconds["row-wise"] / seconds["CLIP"]
            targets.append(
                f"target: step time within {CLIP_TIME_TARGET}x of CLIP's of the same width and depth "
                f"({spec.task}): {ratio:.2f}x -> {'met' if ratio <= CLIP_TIME_TARGET else 'MISSED'}"
            )
    if not rows:
        return
    print_table(("task (default model, batch 32, fp32)", "step", "s/step median [min-max] (steps)", "samples/s",
                 "speed-up of row-wise (time / row-wise's)", "time / CLIP's",
                 f"matmul share of {PROFILED_STEPS} profiled steps"), rows)  # fmt: skip
    print("\n".join(targets) + "\n")
    for spec, result in results.items():
        if spec.model != CURVE or "error" in result:
            continue
        curves = result["losses"]
        main = curves["main"]
        others = [variant for variant in curves if variant != "main"]
        shown = sorted({0, *range(4, len(main), 5), len(main) - 1})
        print(f"loss curve, {label(spec)} (lr 4e-4, {CURVE_BATCHES} batches in turn, same drop-path draws):")
        print_table(("step", "main", *others),
                    [(str(i + 1), f"{main[i]:.5f}", *(f"{curves[v][i]:.5f} ({curves[v][i] - main[i]:+.5f})" for v in others))
                     for i in shown])  # fmt: skip
        for variant in others:
            worst = max(abs(a - b) / abs(a) for a, b in zip(main, curves[variant]))
            print(f"{variant}: largest relative loss difference from main over {len(main)} steps: {worst:.2e}")
        print()


def report(results: dict[Spec, dict]) -> None:
    report_default_model(results)
    ok = {spec: result for spec, result in results.items() if "error" not in result}

    def twin(spec: Spec, **changes) -> dict | None:
        return ok.get(replace(spec, **changes))

    rows, speed, memory = [], [], []
    for spec, result in results.items():
        if spec.model in (PAIR, SPEEDUP, CURVE):
            continue
        if spec not in ok:
            rows.append((label(spec), f"{spec.size} {spec.model}", spec.precision, switch(spec.checkpointing),
                         "failed", result["error"], "", "", "", ""))  # fmt: skip
            continue
        times = result["times_s"]
        vs_clip = memory_ratio = recomputed = ""
        pair = twin(spec, model=PAIR) if spec.model == "ours" and spec.task == "retrieval" else None
        if pair:
            speed.append((spec, pair["step_s"]))
            vs_clip = f"{pair['step_s']['CLIP'] / pair['step_s']['ours']:.2f}x"
        plain = twin(spec, checkpointing=False) if spec.checkpointing else None
        if plain:
            memory.append((spec, result, plain))
            memory_ratio = f"{result['peak_mb'] / plain['peak_mb']:.2f}"
        if spec.checkpointing:
            recomputed = "yes" if result["recomputed"] else "NO"
        rows.append((
            label(spec), f"{spec.size} {spec.model}", spec.precision, switch(spec.checkpointing),
            f"{1 / result['step_s']:.3g}", f"{result['step_s']:.3g} [{min(times):.3g}-{max(times):.3g}] ({len(times)})",
            vs_clip, f"{result['peak_mb']:.0f}", memory_ratio, recomputed,
        ))  # fmt: skip
    if not rows:
        return
    print_table(
        ("task", "model", "precision", "checkpointing", "steps/s", "s/step median [min-max] (steps)",
         "speed vs CLIP, interleaved (>=1: faster)", "peak MB", "peak ckpt / no ckpt", "recomputed"),
        rows,
    )  # fmt: skip
    for size in dict.fromkeys(spec.size for spec in ok):
        fixed = {spec.model: result for spec, result in ok.items()
                 if spec.size == size and spec.model not in (PAIR, SPEEDUP, CURVE)}  # fmt: skip
        if not fixed:
            continue
        print(
            f"{size}: peaks count the fp32 gradients ("
            + ", ".join(f"{result['gradients_mb']:.0f} MB {model}" for model, result in fixed.items())
            + "); AdamW's two moments are allocated before the baseline ("
            + ", ".join(f"{result['moments_mb']:.0f} MB {model}" for model, result in fixed.items())
            + ")"
        )
    if any(not result.get("exact_rss", True) for result in ok.values()):
        print("not glibc: peaks include memory the allocator kept after freeing it")
    print()
    for spec, seconds in speed:
        ratio = seconds["CLIP"] / seconds["ours"]
        verdict = "met" if ratio >= SPEED_TARGET else "MISSED"
        print(f"target: retrieval step at least as fast as CLIP's ({spec.size}, {spec.precision}, checkpointing "
              f"{switch(spec.checkpointing)}): {seconds['ours']:.3g} vs {seconds['CLIP']:.3g} s/step interleaved, "
              f"{ratio:.2f}x -> {verdict}")  # fmt: skip
    for spec, result, plain in memory:
        if spec.size != "base" or spec.model != "ours":
            continue
        ratio = result["peak_mb"] / plain["peak_mb"]
        moments = result["moments_mb"]
        verdict = "met" if ratio <= MEMORY_TARGET else "MISSED"
        print(
            f"target: checkpointing halves peak memory at base ({label(spec)}, {spec.precision}): "
            f"{plain['peak_mb']:.0f} -> {result['peak_mb']:.0f} MB = {ratio:.2f} -> {verdict}; "
            f"with the AdamW moments {(result['peak_mb'] + moments) / (plain['peak_mb'] + moments):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="default,tiny,base",
                        help="comma-separated subset of default,tiny,base (default all; `default` is the shipped "
                             "default model's size, measured before/after and against CLIP)")  # fmt: skip
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--precisions", default="auto",
                        help="comma-separated subset of fp32,bf16; auto (default): bf16 at base only on a CPU with "
                             "native bf16 (AVX512-BF16/AMX), always at tiny")  # fmt: skip
    parser.add_argument(
        "--batch-size", type=int, default=None, help="images per step (default 32 default and tiny, 8 base)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps, median reported (default 7 default, 5 tiny, 3 base)"
    )
    parser.add_argument("--curve-steps", type=int, default=40,
                        help="steps of the default model's loss curves, main's step against the row-wise one (40; "
                             "0: none)")  # fmt: skip
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed steps first, the first one measuring peak memory (default 1)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=240,
        help="seconds of timed steps per configuration: fewer steps past it, at least one (240)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads per child (default 2)")
    parser.add_argument("--classes", type=int, default=100, help="class names of the classification task (max 200)")
    parser.add_argument(
        "--caption-vocabulary",
        choices=("sampled", "exact"),
        default="sampled",
        help="caption targets: sampled (default) or the exact vocabulary (does not fit at base here)",
    )
    parser.add_argument("--vocabulary-samples", type=int, default=None,
                        help="random ids of the sampled vocabulary (default 255 at the default size, as its recipe; "
                             "4096 otherwise)")  # fmt: skip
    parser.add_argument("--caption-words", type=int, default=12, help="words per caption (default 12)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per configuration before giving up")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny only, batch 4, 2 steps, 20 classes, sampled vocabulary of 256",
    )
    args = parser.parse_args()

    def subset(flag: str, value: str, allowed: tuple[str, ...]) -> list[str]:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items or any(item not in allowed for item in items):
            parser.error(f"--{flag} must be a comma-separated subset of {','.join(allowed)}, got {value!r}")
        return items

    sizes = ["tiny"] if args.quick else subset("sizes", args.sizes, SIZES)
    tasks = subset("tasks", args.tasks, TASKS)
    precisions = None if args.precisions == "auto" else subset("precisions", args.precisions, PRECISIONS)
    if not 1 <= args.classes <= len(ADJECTIVES) * len(NOUNS):
        parser.error(f"--classes must be in [1, {len(ADJECTIVES) * len(NOUNS)}], got {args.classes}")
    for name, low in (
        ("batch_size", 2),
        ("steps", 1),
        ("threads", 1),
        ("vocabulary_samples", 1),
        ("caption_words", 4),
        ("curve_steps", 0),
    ):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if args.warmup < 1 or args.budget <= 0:
        parser.error("--warmup must be >= 1 (the memory step) and --budget > 0")
    if args.quick:
        args.batch_size, args.steps, args.classes, args.vocabulary_samples = 4, args.steps or 2, 20, 256

    native = native_bf16()
    specs = []

    def default_spec(size: str, task: str, model: str, steps: int) -> Spec:
        return Spec(size, task, model, "fp32", False, batch_size=args.batch_size or DEFAULT_BATCH[size], steps=steps,
                    warmup=args.warmup, threads=args.threads, classes=args.classes, vocabulary=args.caption_vocabulary,
                    vocabulary_samples=args.vocabulary_samples or DEFAULT_VOCABULARY_SAMPLES[size],
                    caption_words=args.caption_words, budget_s=args.budget)  # fmt: skip

    for size in sizes:
        if size == "default":  # the default model: before/after interleaved and the loss curves, fp32 only
            for task in tasks:
                specs.append(default_spec(size, task, SPEEDUP, args.steps or DEFAULT_STEPS[size]))
                if args.curve_steps:
                    specs.append(default_spec(size, task, CURVE, args.curve_steps))
            continue
        for precision in precisions or (PRECISIONS if size == "tiny" or native else ("fp32",)):
            for checkpointing in (False, True):
                for task in tasks:  # our retrieval right before CLIP's, so both see the same machine load
                    for model in (*MODELS, PAIR) if task == "retrieval" else ("ours",):
                        specs.append(Spec(
                            size, task, model, precision, checkpointing,
                            batch_size=args.batch_size or DEFAULT_BATCH[size],
                            steps=args.steps or DEFAULT_STEPS[size], warmup=args.warmup, threads=args.threads,
                            classes=args.classes, vocabulary=args.caption_vocabulary,
                            vocabulary_samples=args.vocabulary_samples or DEFAULT_VOCABULARY_SAMPLES[size],
                            caption_words=args.caption_words,
                            budget_s=args.budget,
                        ))  # fmt: skip

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {args.threads} threads per child, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if native else 'no'} "
        f"(matmul {matmul_gflops(torch.float32, args.threads):.0f} GFLOPS fp32, "
        f"{matmul_gflops(torch.bfloat16, args.threads):.0f} bf16); load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"children: OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', UNSET_WAIT_POLICY)}; random weights, "
        "training mode, "
        "AdamW; peak MB = peak RSS of the first step - RSS before it (model, batch, AdamW moments)"
    )
    for size in sizes:
        spec = next(s for s in specs if s.size == size)
        size_precisions = ", ".join(dict.fromkeys(s.precision for s in specs if s.size == size))
        vocabulary = ("exact (49,411 targets)" if spec.vocabulary == "exact"
                      else f"sampled (the batch's words + {spec.vocabulary_samples} random ids)")  # fmt: skip
        print(
            f"{size}: batch {spec.batch_size}, {spec.warmup} warm-up step(s), median of {spec.steps} timed steps "
            f"(fewer past {spec.budget_s:.0f} s); {size_precisions}; {spec.classes} class names; captions of "
            f"{spec.caption_words} words; caption vocabulary {vocabulary}"
        )
        if size == "default":
            print(
                "default: the shipped default model's size (4 x 256, 64 px, the 49,411-id vocabulary: 16.1M parameters, "
                "12.6M of them the token table), fp32, gradients clipped at 5.0 as the trainer does; main's step "
                "(dense token-table gradients, fused AdamW) with 1 thread (as the default model was trained) and "
                f"with {args.threads}, the trainer's row-wise step and CLIP of the same width and depth alternate; "
                f"loss curves over {args.curve_steps} steps"
            )
    if "base" in sizes and precisions is None and not native:
        print(
            "base bf16 skipped: this CPU has no native bf16, so bf16 matmuls run far slower than fp32 "
            "(pass --precisions fp32,bf16 to run them anyway)"
        )
    if any(s.task == "caption" and s.vocabulary == "sampled" for s in specs):
        print(
            "caption uses the sampled vocabulary: the exact 49,411-entry vocabulary encoded with gradient in every "
            "step does not fit in this machine's memory at base size"
        )
    print()

    # Children fork from a server that has imported the libraries (about 8 s saved per configuration) and nothing
    # else: no model, no thread pool, so every configuration starts from the same clean process.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(CHILD_IMPORTS)
    results, total = {}, time.perf_counter()
    for spec in specs:
        results[spec] = result = run_spec(context, spec, args.timeout)
        print(
            f"  {spec.size} {label(spec)} {spec.precision} checkpointing {switch(spec.checkpointing)}: "
            f"{summary(result)}",
            flush=True,
        )
    print(f"  total {time.perf_counter() - total:.0f} s, load average {os.getloadavg()[0]:.1f}\n")
    report(results)


if __name__ == "__main__":
    main()
