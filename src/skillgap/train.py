"""Train: supervised fine-tuning on a mixture, through TRL's SFTTrainer (LoRA by default, or full).

Everything the trainer does is set here explicitly, so a TRL or transformers upgrade cannot
change a run by changing a default. Data go in as TRL's conversational prompt/completion
records, so the loss covers the completion only and goes through the model's chat template, the
same template evaluation uses. The trainer reads the items in the order given (the mixture
already shuffled them, or ordered them on purpose for a curriculum). Per-skill validation loss
is Trainer's own evaluation over a dict of per-skill sets, logged every `eval_every` steps.

Resumable: checkpoints go to `out_dir/checkpoints`, and a re-run resumes from the last one; a
finished training (`train_result.json` with the same fingerprint) is not run again.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.models import ModelConfig
from skillgap.store import fingerprint


@dataclass(frozen=True)
class TrainConfig:
    """CPU-sensible defaults: a short LoRA run on a 135M model takes minutes on two cores."""

    method: str = "lora"  # lora | full
    precision: str = "auto"  # auto: bf16 mixed precision where the hardware has bf16 units, else fp32 | bf16 | fp32
    learning_rate: float = 1e-3  # LoRA; use ~2e-5 for full fine-tuning
    lr_scheduler: str = "constant_with_warmup"  # constant: a checkpoint part-way equals a smaller budget
    warmup_steps: int = 3
    epochs: int = 1
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 16
    grad_accum: int = 1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 512  # tokens of prompt + completion; longer records are truncated
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    eval_every: int = 16  # steps between per-skill validation losses (0: never)
    save_every: int = 8  # steps between checkpoints
    keep_checkpoints: int | None = 2  # None keeps every checkpoint (learning curves from one run)
    seed: int = 0

    def validate(self) -> None:
        if self.method not in ("lora", "full"):
            raise ConfigError(f"--method must be 'lora' or 'full', not {self.method!r}.")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--precision must be auto, bf16 or fp32, not {self.precision!r}.")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("--train-batch-size and --grad-accum must be at least 1.")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_record(item: Item) -> dict[str, list[dict[str, str]]]:
    """An item as a TRL conversational prompt/completion record.

    The completion is the item's worked solution; without one, the bare answer (a weak target,
    but honest about what the data hold). A `messages` item ending in an assistant turn uses that.
    """
    chat = item.chat()
    if chat[-1]["role"] == "assistant":
        return {"prompt": chat[:-1], "completion": [chat[-1]]}
    completion = item.completion if item.completion is not None else f"The answer is {item.answer}."
    return {"prompt": chat, "completion": [{"role": "assistant", "content": completion}]}


def use_bf16(precision: str, device: Any) -> bool:
    """bf16 autocast where it pays: GPUs with bf16, and CPUs with bf16 units (AVX512-BF16, AMX), 2-3x faster than fp32."""
    import torch

    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # oneDNN's own check of the CPU
    return device.type == "cpu" and bool(probe and probe())


def train(model: ModelConfig, items: list[Item], cfg: TrainConfig, out_dir: str | Path,
          val: dict[str, list[Item]] | None = None, console: Any = None) -> TrainResult:
    """Fine-tune `model` on `items` (in order) and save the weights under `out_dir`."""
    cfg.validate()
    if not items:
        raise ConfigError("Nothing to train on: the training set is empty.")
    if model.resolved_backend() != "hf":
        raise ConfigError("Training needs a local model (the hf backend); an OpenAI endpoint cannot be trained.")
    out = Path(out_dir)
    from skillgap.models import model_identity

    fp = fingerprint({"model": model_identity(model), "items": [it.id for it in items],
                      "train": asdict(cfg), "val": {s: [it.id for it in v] for s, v in (val or {}).items()}})
    done = out / "train_result.json"
    if done.is_file():
        prev = json.loads(done.read_text())
        if prev.get("fingerprint") == fp and Path(prev["weights"]).exists():
            return TrainResult(**prev)
    ckpts = out / "checkpoints"
    if ckpts.is_dir() and (ckpts / "fingerprint").is_file() and (ckpts / "fingerprint").read_text() != fp:
        shutil.rmtree(ckpts)  # checkpoints of a different training: never resume from those
    ckpts.mkdir(parents=True, exist_ok=True)
    (ckpts / "fingerprint").write_text(fp)

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from skillgap.models.hf import pick_device
    from skillgap.models.sources import materialize, resolve_source

    device = pick_device(model.device)
    bf16 = use_bf16(cfg.precision, device)
    folder = materialize(resolve_source(model.model))
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    # fp32 master weights; with bf16 the forward and backward run under autocast (mixed precision).
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)

    peft_config = None
    if cfg.method == "lora":
        from peft import LoraConfig

        # all-linear leaves out the output layer, so tied input/output embeddings stay untouched.
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules="all-linear", bias="none", task_type="CAUSAL_LM")
    steps_per_epoch = math.ceil(len(items) / (cfg.batch_size * cfg.grad_accum))
    total_steps = cfg.max_steps if cfg.max_steps > 0 else steps_per_epoch * cfg.epochs
    evaluate = bool(val) and cfg.eval_every > 0
    args = SFTConfig(
        output_dir=str(ckpts),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
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
        bf16=bf16,
        fp16=False,
        use_cpu=device.type == "cpu",
        activation_checkpointing=False,
        max_length=cfg.max_length,
        packing=False,
        padding_free=False,
        completion_only_loss=True,
        assistant_only_loss=False,
        dataset_num_proc=None,
        dataloader_num_workers=0,
        logging_strategy="steps",
        logging_steps=1,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=cfg.eval_every if evaluate else None,
        eval_on_start=evaluate,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=cfg.keep_checkpoints,
        save_only_model=False,  # optimizer and scheduler state too, so a resume is exact
        report_to="none",
        disable_tqdm=True,
    )
    train_ds = Dataset.from_list([to_record(it) for it in items])
    eval_ds = {s: Dataset.from_list([to_record(it) for it in v]) for s, v in (val or {}).items() if v} \
        if evaluate else None
    trainer = SFTTrainer(model=base, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tok, peft_config=peft_config,
                         callbacks=[progress_callback(console, total_steps)])
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the progress bar shows the loss; the full log goes to the result
    resume = any(p.name.startswith("checkpoint-") for p in ckpts.iterdir())
    if resume and console is not None:
        console.print(f"[dim]resuming training from {ckpts}[/dim]")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - t0

    weights = out / ("adapter" if cfg.method == "lora" else "model")
    trainer.model.save_pretrained(weights)
    tok.save_pretrained(weights)
    state = trainer.state
    n_tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    log = [{"step": h["step"], "loss": h["loss"], "learning_rate": h.get("learning_rate", 0.0)}
           for h in state.log_history if "loss" in h]
    val_loss = [{"step": h["step"], "skill": k[len("eval_"):-len("_loss")], "loss": v}
                for h in state.log_history for k, v in h.items()
                if k.startswith("eval_") and k.endswith("_loss")]
    result = TrainResult(cfg.method, state.global_step, min(state.global_step * cfg.batch_size * cfg.grad_accum,
                                                            len(items) * cfg.epochs),
                         n_tokens * cfg.epochs, round(seconds, 2), str(weights), log, val_loss, fp)
    tmp = done.with_name(done.name + ".tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    tmp.replace(done)
    return result


def progress_callback(console: Any, total: int) -> Any:
    """A rich progress bar over optimizer steps, with the latest loss (a public TrainerCallback)."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def __init__(self, console: Any, total: int):
            self.console, self.total, self.bar, self.task = console, total, None, None
            self.loss = float("nan")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.console is None:
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
