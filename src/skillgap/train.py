"""Train: supervised fine-tuning on a mixture, through transformers' Trainer and PEFT (LoRA by default, or full).

Data go in as TRL's conversational prompt/completion records (`skillgap.scoring.to_record`, which
teacher-forced scoring renders too) and are tokenized as TRL's SFTTrainer tokenizes them (`encode`),
so the loss covers the completion only and goes through the model's chat template, the same template
evaluation uses. The trainer reads the items in the order given (the mixture already shuffled them, or
ordered them on purpose for a curriculum). Per-skill validation loss is Trainer's own evaluation over a
dict of per-skill sets, logged every `eval_every` steps. Everything the trainer does is set here
explicitly, so an upgrade cannot change a run by changing a default.

Speed (issue 39; benchmarks/results/train_throughput.md): SFTTrainer's fused LM head scores every
position on a CPU (it skips prompt and padding positions only under Triton), and the LM head is a fifth of
SmolLM2-135M. Here each micro-batch is one packed row with no padding (`pack`), the LM head runs on the
completion positions alone (`logits_to_keep`), and with bf16 the frozen base weights are held in bf16.
The same Trainer does the rest: accumulation, the optimizer, checkpoints, evaluation, DDP.

Resumable: checkpoints go to `out_dir/checkpoints`, and a re-run resumes from the last one; a
finished training (`train_result.json` with the same fingerprint) is not run again.

Memory: a batch goes through the model in micro-batches (`micro_batch`; 4 examples on a CPU) and Trainer
accumulates their gradients into one optimizer step, each micro-batch's loss divided by the whole batch's
token count: the same step as one pass over the batch, to float noise.

Several processes (`accelerate launch --multi_gpu --num_processes N -m skillgap train ...`, docs/run.md):
DDP through Trainer, each optimizer step over N times the batch. The main process alone writes files; the
others wait for it where it changes the output folder, and every process takes the same resume decision.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

from skillgap.errors import ConfigError
from skillgap.io import write_json
from skillgap.items import Item
from skillgap.models import ModelConfig, model_identity
from skillgap.models.scratch import from_scratch
from skillgap.models.sources import materialize, resolve_source
from skillgap.scoring import answer_scores, to_record
from skillgap.store import fingerprint
from skillgap.target.online import MixtureStream


class DefaultRate(float):
    """The learning rate nobody chose: LoRA's 1e-3, which `TrainConfig.resolved` swaps for full fine-tuning's (that
    one depends on the model). A float, so the config's type and default stay; its own type, so a rate a user gives,
    even 1e-3, is kept."""


LORA_LR, FULL_LR, SCRATCH_LR = DefaultRate(1e-3), 2e-5, 3e-4  # by method: LoRA, full, full from scratch


@dataclass(frozen=True)
class TrainConfig:
    """CPU-sensible defaults: a short LoRA run on a 135M model takes minutes on two cores."""

    method: str = field(default="auto", metadata={
        "choices": ("auto", "lora", "full"), "help": "auto: full for a from-scratch model (scratch-tiny), else lora"})
    # auto: bf16 mixed precision where the hardware has bf16 units (fp32 for a from-scratch model), else fp32
    precision: str = field(default="auto", metadata={
        "choices": ("auto", "bf16", "fp32"), "help": "auto: bf16 mixed precision where the CPU or GPU has bf16 units"})
    learning_rate: float = field(default=LORA_LR, metadata={  # by method and model when not given: resolved()
        "help": f"(default: {LORA_LR:g} for lora, {SCRATCH_LR:g} for a from-scratch model, {FULL_LR:g} for full "
                "fine-tuning of a pretrained one)"})
    lr_scheduler: str = "constant_with_warmup"  # constant: a checkpoint part-way equals a smaller budget
    warmup_steps: int = field(default=3, metadata={"help": ""})
    epochs: int = field(default=1, metadata={"help": ""})
    max_steps: int = field(default=-1, metadata={"flag": ("--max-steps", "--steps"), "help": "> 0 overrides --epochs"})
    batch_size: int = field(default=16, metadata={"flag": "--train-batch-size", "help": ""})
    grad_accum: int = field(default=1, metadata={"help": ""})
    # examples per forward pass (one packed row), accumulated to the batch (same update); 0: up to 4 on a CPU, the
    # whole batch elsewhere
    micro_batch_size: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = field(default=512, metadata={  # longer records are truncated
        "help": "tokens per record"})
    lora_r: int = field(default=16, metadata={"help": ""})
    lora_alpha: int = field(default=32, metadata={"help": ""})
    lora_dropout: float = 0.0
    eval_every: int = field(default=16, metadata={  # 0: never
        "help": "steps between per-skill validation losses"})
    save_every: int = field(default=8, metadata={"help": "steps between checkpoints"})
    keep_checkpoints: int | None = 2  # None keeps every checkpoint (learning curves from one run)
    seed: int = 0

    def check(self) -> None:
        if self.method not in ("auto", "lora", "full"):
            raise ConfigError(f"--method must be 'auto', 'lora' or 'full', not {self.method!r}.")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--precision must be auto, bf16 or fp32, not {self.precision!r}.")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("--train-batch-size and --grad-accum must be at least 1.")
        if self.micro_batch_size < 0 or (self.micro_batch_size and self.batch_size % self.micro_batch_size):
            raise ConfigError(f"The micro-batch size ({self.micro_batch_size}) must divide --train-batch-size "
                              f"({self.batch_size}), or be 0 (automatic).")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be positive, got {self.learning_rate}.")
        if self.epochs < 1 or self.max_length < 1 or self.lora_r < 1 or self.lora_alpha < 1:
            raise ConfigError("--epochs, --max-length, --lora-r and --lora-alpha must be at least 1.")
        if self.eval_every < 0 or self.save_every < 1 or self.warmup_steps < 0:
            raise ConfigError("--eval-every and --warmup-steps must be at least 0, --save-every at least 1.")

    def resolved(self, model: ModelConfig) -> TrainConfig:
        """`auto` settled for `model`: a from-scratch model trains in full, in fp32 (bf16 buys a tiny model no speed,
        only rounding in every update); the learning rate, when not given, follows the method and the model."""
        scratch = from_scratch(model.model)
        method = self.method if self.method != "auto" else "full" if scratch else "lora"
        lr = self.learning_rate
        if isinstance(lr, DefaultRate):
            lr = float(lr) if method == "lora" else SCRATCH_LR if scratch else FULL_LR
        precision = "fp32" if self.precision == "auto" and scratch else self.precision
        return replace(self, method=method, learning_rate=lr, precision=precision)


@dataclass
class TrainResult:
    method: str
    steps: int
    examples_seen: int
    train_tokens: int
    seconds: float
    weights: str  # the adapter folder (LoRA) or the model folder (full)
    log: list[dict[str, float]] = field(default_factory=list)  # step, loss, learning_rate
    val_loss: list[dict[str, Any]] = field(default_factory=list)  # step, skill, loss
    fingerprint: str = ""
    processes: int = 1  # data-parallel processes (`accelerate launch --num_processes`); a step saw batch x this

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_model(self, base: ModelConfig) -> ModelConfig:
        """The trained model: `base` with this adapter (LoRA), or this folder in place of its weights (full)."""
        return replace(base, adapter=self.weights) if self.method == "lora" else replace(base, model=self.weights)


def use_bf16(precision: str, device: Any) -> bool:
    """bf16 autocast where it pays: GPUs with bf16, and CPUs with bf16 units (AVX512-BF16, AMX), 2-3x faster than fp32.

    oneDNN's own probe (`_is_mkldnn_bf16_supported`) also says yes on plain AVX-512, where bf16 is emulated:
    there a 1024² bf16 matmul took 2.7x as long as fp32, and the main job's first 8 LoRA steps 491 s against
    227 s. So the CPU must report the bf16 instructions themselves."""
    import torch

    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    units = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(f and f()) for f in units)


def base_in_bf16(cfg: TrainConfig, device: Any) -> bool:
    """Whether the frozen base weights are held in bf16: LoRA under bf16 (the adapter stays fp32)."""
    return cfg.method == "lora" and use_bf16(cfg.precision, device)


def micro_batch(cfg: TrainConfig, device: Any) -> int:
    """Examples per forward pass: the configured size, else on a CPU the largest divisor of the batch up to 4 (one
    packed row of ~500 tokens: the fastest step measured, benchmarks/results/train_throughput.md, where a longer
    row pays for attention across examples that the mask throws away), else the whole batch (a GPU wants wide
    passes)."""
    if cfg.micro_batch_size:
        return cfg.micro_batch_size
    if device.type != "cpu":
        return cfg.batch_size
    return max(m for m in (1, 2, 3, 4) if cfg.batch_size % m == 0)


# The training path's version: a finished training or checkpoint of another path is not reused.
TRAIN_PATH = "packed-completion-head-v1"

# Long enough for the others to wait while the main process diagnoses the model and builds the training set.
PROCESS_GROUP_TIMEOUT = timedelta(hours=2)


def process_state(device: str = "auto") -> Any:
    """accelerate's `PartialState` for this process: under `accelerate launch`, its rank among the others (it
    joins their process group, on the device training will use); in a plain run, the one and main process."""
    from accelerate import PartialState

    from skillgap.models.hf import pick_device

    cpu = pick_device(device).type == "cpu" or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
    return PartialState(cpu=cpu, timeout=PROCESS_GROUP_TIMEOUT)


@contextmanager
def main_process_first(device: str = "auto") -> Iterator[bool]:
    """Under `accelerate launch`, the main process runs the block first and the others wait, then run it (accelerate's
    `main_process_first`); yields whether this is the main process. In a plain run it just runs the block."""
    state = process_state(device)
    with state.main_process_first():
        yield state.is_main_process


def train_fingerprint(model: ModelConfig, items: list[Item], cfg: TrainConfig,
                      val: dict[str, list[Item]] | None = None, stream: MixtureStream | None = None,
                      round_steps: int = 0, world: int = 1) -> str:
    """What a training is keyed on: the model by content, every item by what is trained on (an edited file with
    the same ids is another training), the settings, and the stream's policy and sources."""
    from skillgap.models.hf import pick_device

    def content(its: list[Item]) -> list[Any]:
        return [[it.id, list(it.skills), to_record(it)] for it in its]

    # The micro-batch size changes how a step is computed, not what: a finished training or its checkpoints stay valid.
    train_key = {k: v for k, v in asdict(cfg).items() if k != "micro_batch_size"}
    device = pick_device(model.device)
    bf16 = use_bf16(cfg.precision, device)  # `auto` as this machine resolves it
    # how a step is computed where it changes the numbers: base weights in bf16, packed rows (TRAIN_PATH)
    path = {"bf16_base": base_in_bf16(cfg, device), "path": TRAIN_PATH}
    return fingerprint({"model": model_identity(model), "items": content(items), "train": train_key, "bf16": bf16,
                        **path,
                        "val": {s: content(v) for s, v in (val or {}).items()},
                        "stream": None if stream is None else {"policy": repr(stream.policy), "seed": stream.seed,
                                                               "sources": stream.sources_key,
                                                               "round_steps": round_steps}}
                       | ({"processes": world} if world > 1 else {}))


def _check(model: ModelConfig, items: list[Item], cfg: TrainConfig, val: dict[str, list[Item]] | None,
           stream: MixtureStream | None, round_steps: int) -> None:
    """Every way the call can be wrong, before a process group forms or a model loads."""
    cfg.check()
    if stream is None and not items:
        raise ConfigError("Nothing to train on: the training set is empty.")
    if stream is not None:
        if cfg.max_steps <= 0:
            raise ConfigError("An online mixture is an endless stream: give --steps N.")
        if not val or cfg.eval_every <= 0:
            raise ConfigError("An online mixture needs validation items and --eval-every > 0.")
        if round_steps <= 0 or round_steps % cfg.eval_every:
            raise ConfigError(f"--round-steps ({round_steps}) must be a positive multiple of --eval-every "
                              f"({cfg.eval_every}): rounds end on an evaluation.")
    if model.resolved_backend() == "openai":  # a local model (hf or vllm backend) trains through transformers
        raise ConfigError("Training needs a local model; an OpenAI endpoint cannot be trained.")


def _fingerprint(model: ModelConfig, items: list[Item], cfg: TrainConfig, val: dict[str, list[Item]] | None,
                 stream: MixtureStream | None, round_steps: int, world: int) -> str:
    """`train_fingerprint`, which under accelerate launch every process must agree on: each trains its share of
    one training, so a process that read other data or settings would silently train another."""
    fp = train_fingerprint(model, items, cfg, val, stream, round_steps, world)
    if world > 1:
        from accelerate.utils import gather_object

        if len(set(gather_object([fp]))) > 1:
            raise ConfigError("The processes disagree on the training data or config; each must see the same.")
    return fp


def _finished(done: Path, fp: str, console: Any) -> TrainResult | None:
    """The result of this very training if it finished before (same fingerprint, its weights still on disk)."""
    if not done.is_file():
        return None
    prev = json.loads(done.read_text())
    if prev.get("fingerprint") == fp and Path(prev["weights"]).exists():
        return TrainResult(**prev)
    if console is not None:
        console.print(f"[yellow]{done} is of a training on other items, settings or base weights: "
                      f"training again[/yellow]")
    return None


def _resume_step(ckpts: Path, fp: str, ps: Any) -> int:
    """The checkpoint step to resume from (0: a fresh start). Checkpoints of another training are deleted, never
    resumed from, and the folder is marked with this training's fingerprint (by the main process)."""
    # Every process reads the folder and decides before the main one changes it, so all resume from the same step.
    stale = ckpts.is_dir() and (ckpts / "fingerprint").is_file() and (ckpts / "fingerprint").read_text() != fp
    last = 0 if stale else max((int(p.name.split("-")[1]) for p in ckpts.glob("checkpoint-*")
                                if p.name.split("-")[1].isdigit() and p.is_dir()), default=0)
    ps.wait_for_everyone()
    if ps.is_main_process:
        if stale:
            shutil.rmtree(ckpts)
        ckpts.mkdir(parents=True, exist_ok=True)
        (ckpts / "fingerprint").write_text(fp)
    ps.wait_for_everyone()
    return last


def _load(model: ModelConfig, cfg: TrainConfig, ps: Any, device: Any) -> tuple[Any, Any]:
    """The model to train (LoRA: PEFT-wrapped) and its tokenizer (with a pad token).

    LoRA with bf16 holds the frozen base weights in bf16 and the adapter in fp32 (PEFT's default): autocast then
    casts no base weight on every forward and backward, which cost the fp32-weight path a fifth of its step. Full
    fine-tuning keeps fp32 master weights (an optimizer step on bf16 weights loses small updates to rounding).
    Attention is eager on a CPU: with the short sequences here it trained faster than SDPA (benchmarks/results/
    train_throughput.md), and both keep packed examples apart."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with ps.main_process_first():  # a GGUF is converted into the cache once, by the main process
        folder = materialize(resolve_source(model.model))
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if base_in_bf16(cfg, device) else torch.float32
    attn = "eager" if device.type == "cpu" else "sdpa"
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation=attn)
    if cfg.method != "lora":
        return base, tok
    from peft import LoraConfig, get_peft_model

    # all-linear leaves out the output layer, so tied input/output embeddings stay untouched.
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", bias="none", task_type="CAUSAL_LM")
    return get_peft_model(base, lora), tok


def encode(record: dict[str, Any], tokenizer: Any, max_length: int) -> dict[str, list[int]] | None:
    """A prompt/completion record as `input_ids` and `labels` (-100 outside the completion), tokenized as TRL's
    SFTTrainer tokenizes it (tests/test_train.py compares the two): through the chat template, the completion
    with its end-of-turn token (plain text: the EOS token appended), cut to `max_length`. None when no completion
    token is left after the cut (TRL drops those examples too)."""
    if isinstance(record["prompt"], list):
        chat = record["prompt"]
        prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(chat + record["completion"], tokenize=True, return_dict=True)["input_ids"]
    else:
        completion = record["completion"]
        if not completion.endswith(tokenizer.eos_token):
            completion += tokenizer.eos_token
        prompt = tokenizer(text=record["prompt"])["input_ids"]
        full = tokenizer(text=record["prompt"] + completion)["input_ids"]
    # The completion starts where the two diverge (a template may render the prompt alone differently).
    start = next((i for i, (a, b) in enumerate(zip(prompt, full)) if a != b), min(len(prompt), len(full)))
    full = list(full[:max_length])
    labels = [-100] * min(start, len(full)) + full[start:]
    return {"input_ids": full, "labels": labels} if any(t != -100 for t in labels) else None


def pack(examples: list[dict[str, list[int]]]) -> dict[str, Any]:
    """A micro-batch as one row without padding: the examples end to end, positions restarting at each, so that
    attention stays within an example (transformers builds the block-diagonal mask from the position ids), and
    `logits_to_keep` the positions whose next token is a completion token: the LM head, a fifth of the model,
    scores those alone instead of every position. `labels` stay unshifted, as Trainer counts them."""
    import torch

    ids: list[int] = []
    positions: list[int] = []
    labels: list[int] = []
    for ex in examples:
        ids += ex["input_ids"]
        positions += range(len(ex["input_ids"]))
        labels += [-100] + ex["labels"][1:]  # an example's first token is never a target (nothing precedes it)
    keep = [i for i in range(len(ids) - 1) if labels[i + 1] != -100]
    return {"input_ids": torch.tensor([ids]), "position_ids": torch.tensor([positions]),
            # [1, n], like every tensor here a batch of one row: what slices batches along dim 0 (accelerate
            # dispatching an IterableDataset's batches) keeps it whole
            "logits_to_keep": torch.tensor([keep], dtype=torch.long), "labels": torch.tensor([labels]),
            "use_cache": False}


def completion_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the kept logits (one per completion token, in order) against their tokens, summed and
    divided by the tokens of the whole step (Trainer passes that count when it accumulates micro-batches), or by
    this batch's own (evaluation): the loss SFTTrainer computes."""
    import torch.nn.functional as F

    targets = labels[0, 1:]
    targets = targets[targets != -100]
    logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])  # [1, 1, n, vocab] from a [1, n] index
    total = F.cross_entropy(logits.float(), targets.to(logits.device), reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else max(len(targets), 1)
    return total / count


def _training_args(cfg: TrainConfig, ckpts: Path, device_name: str, evaluate: bool) -> Any:
    """Every TrainingArguments setting the run depends on, set explicitly: an upgrade cannot change a default
    under it."""
    from transformers import TrainingArguments

    from skillgap.models.hf import pick_device

    device = pick_device(device_name)
    micro = micro_batch(cfg, device)
    return TrainingArguments(
        output_dir=str(ckpts),
        # Trainer sums the micro-batches' gradients, each micro-batch's loss divided by the token count of the
        # whole batch (`num_items_in_batch`): the step of one pass over `batch_size` examples.
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=cfg.grad_accum * (cfg.batch_size // micro),
        # Evaluation keeps no activations; its per-batch mean loss is the same as before only at the same batch.
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim="adamw_torch",
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="sequential",  # the mixture fixed the order
        bf16=use_bf16(cfg.precision, device),
        fp16=False,
        use_cpu=device.type == "cpu",
        # renamed activation_checkpointing in transformers 5.20; the vllm extra pins <5.20
        **{"activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
           else "gradient_checkpointing": False},
        remove_unused_columns=False,  # the collator reads input_ids and labels; the model sees what it builds
        label_names=["labels"],
        prediction_loss_only=True,
        dataloader_num_workers=0,
        ddp_timeout=int(PROCESS_GROUP_TIMEOUT.total_seconds()),
        ddp_find_unused_parameters=False,  # every trainable weight is in the forward pass
        logging_strategy="steps",
        logging_steps=1,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=cfg.eval_every if evaluate else None,
        eval_on_start=evaluate,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=cfg.keep_checkpoints,
        save_only_model=False,  # optimizer and scheduler state too, so a resume is exact
        include_num_input_tokens_seen="all",  # a stream's token count (a list has it already); no padding to skip
        report_to="none",
        disable_tqdm=True,
    )


def _datasets(items: list[Item], val: dict[str, list[Item]] | None, stream: MixtureStream | None,
              tokenizer: Any, max_length: int) -> tuple[Any, Any]:
    """The training set (the items in their order, tokenized, or the stream, drawn and tokenized as the trainer
    reads it) and the per-skill validation sets Trainer evaluates (`val` None: no evaluation by Trainer)."""
    from datasets import Dataset, IterableDataset

    conversational = bool(tokenizer.chat_template)

    def rows(its: Any) -> Iterator[dict[str, list[int]]]:
        for it in its:
            row = encode(to_record(it, conversational), tokenizer, max_length)
            if row is not None:
                yield row

    if stream is not None:
        train_ds = IterableDataset.from_generator(lambda: rows(stream))
    else:
        train_ds = Dataset.from_list(list(rows(items)))
    eval_ds = None if val is None else {s: Dataset.from_list(list(rows(v))) for s, v in val.items() if v}
    return train_ds, eval_ds


def _collect(trainer: Any, items: list[Item], stream: MixtureStream | None, epochs: int, per_step: int,
             out: Path) -> dict[str, Any]:
    """What was trained, from the trainer's state: steps, examples and tokens seen, the loss log, and the per-skill
    validation losses (Trainer's own evaluations for a list; for a stream, its callback's log)."""
    state = trainer.state
    log = [{"step": h["step"], "loss": h["loss"], "learning_rate": h.get("learning_rate", 0.0)}
           for h in state.log_history if "loss" in h]
    if stream is None:
        tokens = sum(len(x) for x in trainer.train_dataset["input_ids"]) * epochs
        seen = min(state.global_step * per_step, len(items) * epochs)
        val_loss = [{"step": h["step"], "skill": k[len("eval_"):-len("_loss")], "loss": v}
                    for h in state.log_history for k, v in h.items()
                    if k.startswith("eval_") and k.endswith("_loss")]
    else:
        tokens = int(state.num_input_tokens_seen or 0)
        seen = state.global_step * per_step
        val_loss = [{"step": r["step"], "skill": sk, "loss": v} for r in read_log(out / "val_loss.jsonl")
                    for sk, v in r["loss"].items()]
    return {"steps": state.global_step, "examples_seen": seen, "train_tokens": tokens, "log": log,
            "val_loss": val_loss}


def train(model: ModelConfig, items: list[Item], cfg: TrainConfig, out_dir: str | Path,
          val: dict[str, list[Item]] | None = None, console: Any = None,
          stream: MixtureStream | None = None, round_steps: int = 0) -> TrainResult:
    """Fine-tune `model` on `items` (in order), or on an online `stream`, and save the weights under `out_dir`.

    With a stream, every `eval_every` steps the per-skill answer loss on `val` goes to the
    stream's policy, and every `round_steps` steps the stream takes the policy's new weights
    (logged one line per round to `out_dir/mixture.jsonl`).
    """
    cfg = cfg.resolved(model)  # method auto: full fine-tuning for a from-scratch model, LoRA otherwise
    _check(model, items, cfg, val, stream, round_steps)
    out, ps = Path(out_dir), process_state(model.device)
    world = ps.num_processes
    if stream is not None and world > 1:
        raise ConfigError("An online mixture (--mixture) trains in one process: run it without accelerate launch.")
    console = console if ps.is_main_process else None  # one progress bar, one set of messages: the main process's
    fp = _fingerprint(model, items, cfg, val, stream, round_steps, world)
    done = out / "train_result.json"
    finished = _finished(done, fp, console)
    if finished is not None:
        return finished
    ckpts = out / "checkpoints"
    last = _resume_step(ckpts, fp, ps)

    from transformers import PrinterCallback, Trainer

    from skillgap.models.hf import pick_device

    model_, tok = _load(model, cfg, ps, pick_device(model.device))
    per_step = cfg.batch_size * cfg.grad_accum * world  # examples per optimizer step, over all processes
    total_steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(len(items) / per_step) * cfg.epochs
    evaluate = bool(val) and cfg.eval_every > 0 and stream is None  # a stream's callback evaluates instead
    conversational = bool(tok.chat_template)
    args = _training_args(cfg, ckpts, model.device, evaluate)
    callbacks = [progress_callback(console, total_steps)]
    if stream is not None:
        restore_stream(stream, out, last)
        callbacks.append(mixture_callback(stream, val or {}, tok, conversational, cfg.eval_every, round_steps, out))
    train_ds, eval_ds = _datasets(items, val if evaluate else None, stream, tok, cfg.max_length)
    trainer = Trainer(model=model_, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=pack,
                      processing_class=tok, compute_loss_func=completion_loss, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # the progress bar shows the loss; the full log goes to the result
    if last and console is not None:
        console.print(f"[dim]resuming training from {ckpts}[/dim]")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(ckpts / f"checkpoint-{last}") if last else None)
    seconds = time.perf_counter() - t0

    weights = out / ("adapter" if cfg.method == "lora" else "model")
    trainer.save_model(str(weights))  # the main process writes (the adapter or model, and the tokenizer)
    result = TrainResult(cfg.method, seconds=round(seconds, 2), weights=str(weights), fingerprint=fp, processes=world,
                         **_collect(trainer, items, stream, cfg.epochs, per_step, out))
    if trainer.is_world_process_zero():
        write_json(result.to_dict(), done)
    ps.wait_for_everyone()  # every process returns once the weights and the result are on disk
    return result


def progress_callback(console: Any, total: int) -> Any:
    """A rich progress bar over optimizer steps, with the latest loss (a public TrainerCallback)."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def __init__(self, console: Any, total: int):
            self.console, self.total, self.bar, self.task = console, total, None, None
            self.loss = float("nan")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.console is None or not state.is_world_process_zero:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("eta"), TimeRemainingColumn(),
                                console=self.console)
            self.task = self.bar.add_task("train", total=state.max_steps or self.total, completed=state.global_step,
                                          loss=self.loss)
            self.bar.start()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.loss = logs["loss"]
                self.bar.update(self.task, completed=state.global_step, loss=self.loss)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.stop()

    return _Progress(console, total)


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def restore_stream(stream: MixtureStream, out: Path, step: int) -> None:
    """Bring the stream and its policy back to `step` (the checkpoint resumed from; 0: a fresh start).

    The logs are cut back to that step; the policy re-reads the evaluations it had seen, and the
    stream the weight changes it had made, so the resumed run draws what the first run would have.
    """
    vals = [r for r in read_log(out / "val_loss.jsonl") if 0 < step and r["step"] <= step]
    rounds = [r for r in read_log(out / "mixture.jsonl") if 0 < step and r["step"] <= step]
    for name, rows in (("val_loss.jsonl", vals), ("mixture.jsonl", rounds)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in vals:
        if r["step"] > 0:
            stream.policy.update(r["loss"])
    if rounds:
        stream.changes = [(r["example"], r["weights"]) for r in rounds]


def mixture_callback(stream: MixtureStream, val: dict[str, list[Item]], tokenizer: Any, conversational: bool,
                     eval_every: int, round_steps: int, out: Path) -> Any:
    """Evaluate per-skill answer loss, feed the policy, re-weight the stream at round ends (a public TrainerCallback)."""
    from transformers import TrainerCallback

    class _Mixture(TrainerCallback):
        def _evaluate(self, step: int, model: Any) -> None:
            scores = answer_scores(model, tokenizer, val, conversational)
            losses = {s: v["loss"] for s, v in scores.items()}
            _append(out / "val_loss.jsonl", {"step": step, "loss": losses,
                                             "accuracy": {s: v["accuracy"] for s, v in scores.items()}})
            if step > 0:
                stream.policy.update(losses)
            if step % round_steps == 0:
                weights = stream.refresh() if step > 0 else stream.changes[-1][1]
                _append(out / "mixture.jsonl", {"round": step // round_steps, "step": step,
                                                "example": stream.changes[-1][0],
                                                "weights": {s: round(w, 6) for s, w in weights.items()}})

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            if state.global_step == 0:
                self._evaluate(0, model)

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            if state.global_step % eval_every == 0:
                self._evaluate(state.global_step, model)

    return _Mixture()
