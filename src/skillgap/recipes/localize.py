"""`skillgap localize`: where a fine-tuned model keeps each skill (grafting, see `skillgap.localize`).

    pre, ft = base model, fine-tuned model                # same architecture; τ = ft − pre on the decoder blocks
    for each skill, for each sparsity:
        graft   = find_mask(pre, τ, the skill's train items)   # scored on train + validation items, as the paper
        movement, random = the baselines at the graft's size
        each mask grafted onto pre, written as a model folder, profiled on the skill's held-out test items
        gain recovery = (grafted − base) / (fine-tuned − base)   # the share of the fine-tune's gain the mask keeps
        accuracy ratio = grafted / fine-tuned                     # the paper's headline, base model included
    overlap[i][j] = |γ_i ∩ γ_j| / |γ_j| at each sparsity     -> overlap-<s>.png beside the prerequisite graph

For a suite (or a labelled file of open-ended items) accuracy is the loop's own: generation, graded, every
item counted; each grafted model is written as a folder and profiled, and every profile lives in the run store.
For classification items (`--format classification`: SST-2, SST-5, TREC with LM-BFF's label words) it is the
paper's: the most probable label word, scored in memory, with its expected calibration error (ECE) beside it;
the mask is selected by train + validation accuracy, as the paper's code does. Masks are saved (sparse) under
`<output>/masks/`, so a killed run resumes; grafted folders are deleted once profiled (`--keep-models` keeps them).

`--finetuned` may be a skill library (`skillgap library`): each skill is then localized in its own adapter's
delta, and the overlap matrix compares what separate fine-tunes moved, as the paper's multi-task figure does.

`python -m skillgap.recipes.localize DIR...` recomputes the derived fields and rewrites `DIR/localize.md` from
`DIR/localize.json`, without loading a model.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, load_items, stratified_sample, suite_of
from skillgap.errors import ConfigError, unknown_name
from skillgap.items import Item
from skillgap.library import Library
from skillgap.localize import (GRAFTABLE, GraftConfig, Mask, find_mask, graft, graftable, label_calibration,
                               movement_mask, random_mask, task_vector)
from skillgap.models import ModelConfig, ModelPool, model_identity
from skillgap.recipes.profile import EvalConfig, profile, write_json
from skillgap.scoring import answer_scores, completion_batches
from skillgap.store import fingerprint
from skillgap.suites import validation_items
from skillgap.verify import assert_disjoint


@dataclass(frozen=True)
class LocalizeConfig:
    skills: tuple[str, ...] = field(metadata={  # each: its single-skill items
        "metavar": "A,B", "help": "the skills to localize, one mask each"})
    sparsities: tuple[float, ...] = field(default=(1e-5, 1e-4, 1e-3), metadata={
        "flag": "--sparsity", "items": "shares", "example": "1e-5,1e-4",
        "help": "base-patch sizes as shares of the graftable parameters"})
    train_limit: int = field(default=64, metadata={  # the mask's gradient is taken on these
        "help": "train items per skill the mask is found on"})
    val_limit: int = field(default=32, metadata={"help": "validation items per skill added to the selection score"})
    test_limit: int = field(default=50, metadata={
        "help": "held-out test items per skill the recovery is measured on"})
    pattern: str = GRAFTABLE
    keep_models: bool = field(default=False, metadata={"help": "keep each grafted model folder after profiling it"})
    validation_data: str | None = field(default=None, metadata={
        "help": "with --data: held-out items that select the mask (default: train items the mask never saw)"})
    test_data: str | None = field(default=None, metadata={
        "help": "with --data: held-out items the recovery is measured on"})

    def check(self) -> None:
        if not self.skills:
            raise ConfigError("--skills: name at least one skill to localize.")
        if not self.sparsities or any(not 0 < s < 1 for s in self.sparsities):
            raise ConfigError(f"--sparsity must list shares in (0, 1), got {self.sparsities}.")
        for name in ("train_limit", "val_limit", "test_limit"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")


@dataclass
class _Run:
    """What every measurement of one localize run reads: its settings, items, output folder and model pool."""

    base: ModelConfig
    data: DataConfig
    lc: LocalizeConfig
    ev: EvalConfig
    items: dict[str, dict[str, list[Item]]]  # skill -> train / validation / test
    classify: bool  # label words scored in memory, else generation through the run store
    out: Path
    runs_dir: str | Path
    console: Console
    models: ModelPool


@dataclass
class _Pre:
    """The base model in memory and its graftable weights: live (grafted in place) and θ_pre (a copy)."""

    model: Any
    tokenizer: Any
    params: dict[str, Any]
    weights: dict[str, Any]

    @property
    def conversational(self) -> bool:
        return bool(self.tokenizer.chat_template)


def finetuned_models(base: ModelConfig, finetuned: str | Path,
                     skills: tuple[str, ...]) -> ModelConfig | dict[str, ModelConfig]:
    """What `--finetuned` names: a skill library (one adapter per skill), a LoRA adapter of `base`, or a full model."""
    folder = Path(finetuned)
    if (folder / "index.json").is_file():
        lib = Library.load(folder)
        return {x: replace(base, adapter=str(lib.adapter(x))) for x in skills}
    if (folder / "adapter_config.json").is_file():
        return replace(base, adapter=str(folder))
    return replace(base, model=str(folder), adapter=None)


def localize_recipe(base: ModelConfig, finetuned: ModelConfig | dict[str, ModelConfig], data: DataConfig,
                    lc: LocalizeConfig, gc: GraftConfig, ev: EvalConfig, output_path: str | Path,
                    runs_dir: str | Path = "runs", console: Console | None = None) -> dict[str, Any]:
    """`finetuned`: one model every skill is localized in, or one per skill (a library's adapters: each skill's
    τ is its own fine-tune's, so the overlap of two masks says whether two fine-tunes moved the same weights)."""
    console = console or Console(stderr=True)
    for c in (data, lc, gc, ev):
        c.check()
    per_skill = finetuned if isinstance(finetuned, dict) else {s: finetuned for s in lc.skills}
    missing = [s for s in lc.skills if s not in per_skill]
    if missing:
        raise ConfigError(f"no fine-tuned model for skill(s) {', '.join(missing)} (the library has "
                          f"{', '.join(per_skill) or 'none'}).")
    items, prerequisites = _items(data, lc)
    for c in (base, *per_skill.values()):
        c.check()
    classify = all("choices" in it.metadata for by in items.values() for it in by["train"] + by["test"])
    if data.data and not classify:  # generations are graded after the models load: every test reference first
        load_items(held_out(data, lc, lc.skills[0]), ev.grader, check=True)
    out = Path(output_path)
    config = _claim(out, _config(base, per_skill, data, lc, gc, ev, items))
    run = _Run(base, data, lc, ev, items, classify, out, runs_dir, console, ModelPool())
    res: dict[str, Any] = {"config": config, "skills": {}, "measure": "label words" if classify else "generation"}
    try:
        from skillgap.models.hf import load_merged

        model, tok = load_merged(base)
        params = graftable(model, lc.pattern)
        pre = _Pre(model, tok, params, {n: p.detach().clone() for n, p in params.items()})
        res["graftable_parameters"] = sum(p.numel() for p in params.values())
        res["all_parameters"] = sum(p.numel() for p in model.parameters())
        taus, finetuned_scores = _task_vectors(run, pre, per_skill)
        for s in lc.skills:
            res["skills"][s] = {
                "base": _label_words(run, pre.model, tok, s, f"{s}-base") if classify
                else _generation(run, base, s, f"{s}-base"),
                "finetuned": finetuned_scores[s] if classify else _generation(run, per_skill[s], s, f"{s}-ft"),
                "masks": {}}
        run.models.close()
        masks: dict[tuple[str, float], Mask] = {}
        for s in lc.skills:
            for sp in lc.sparsities:
                masks[(s, sp)], row = _masks_at(run, pre, taus[s], s, replace(gc, sparsity=sp))
                res["skills"][s]["masks"][f"{sp:g}"] = row
                derive(res["skills"][s])
                console.print(_summary(res["skills"][s], s, f"{sp:g}"))
                write_json(res, out / "localize.json")
        res["overlap"] = {f"{sp:g}": [[masks[(a, sp)].overlap(masks[(b, sp)]) for b in lc.skills] for a in lc.skills]
                          for sp in lc.sparsities}
        res["prerequisites"] = prerequisites
        write_json(res, out / "localize.json")
        write_markdown(res, out / "localize.md")
        for sp in lc.sparsities:
            plot_overlap(res, f"{sp:g}", out / f"overlap-{sp:g}.png")
    finally:
        run.models.close()
    return res


def _config(base: ModelConfig, per_skill: dict[str, ModelConfig], data: DataConfig, lc: LocalizeConfig,
            gc: GraftConfig, ev: EvalConfig, items: dict[str, dict[str, list[Item]]]) -> dict[str, Any]:
    return {"base": base.to_dict(), "finetuned": {s: per_skill[s].to_dict() for s in lc.skills},
            "data": asdict(data), "localize": asdict(lc), "graft": asdict(gc), "eval": asdict(ev),
            # the models and items by content: a model retrained in its folder or an edited file is another run
            "identity": {"base": model_identity(base),
                         "finetuned": {s: model_identity(per_skill[s]) for s in lc.skills},
                         "items": fingerprint({s: {k: [it.to_dict() for it in v] for k, v in by.items()}
                                               for s, by in items.items()})}}


def _comparable(c: dict[str, Any]) -> dict[str, Any]:
    """A run's config without what may change on resume: more sparsity levels extend a run (each has its masks)."""
    c = json.loads(json.dumps(c))
    c["localize"].pop("sparsities", None)
    c["localize"].pop("keep_models", None)
    return c


def _claim(out: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Write `config` to `out/config.json`, refusing a folder that holds a run with other settings, models or items."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.json"
    if saved.is_file() and _comparable(json.loads(saved.read_text())) != _comparable(config):
        raise ConfigError(f"{out} holds a localize run with other settings, models or items ({saved}); give another "
                          "--output-path or delete it.")
    write_json(config, saved)
    return config


def _task_vectors(run: _Run, pre: _Pre, per_skill: dict[str, ModelConfig],
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each skill's τ = its fine-tune − base (a fine-tuned model shared by skills is loaded once) and, for label
    words, the fine-tune's scores on its skills, taken while it is in memory."""
    from skillgap.models.hf import load_merged

    shared: dict[str, list[str]] = {}
    for s in run.lc.skills:
        shared.setdefault(json.dumps(per_skill[s].to_dict(), sort_keys=True), []).append(s)
    taus, scores = {}, {}
    for skills in shared.values():
        ft_model, _ = load_merged(per_skill[skills[0]])  # a LoRA fine-tune merged in: τ is its full-rank delta
        tau = task_vector(pre.weights, {n: p for n, p in ft_model.named_parameters() if n in pre.params})
        for s in skills:
            taus[s] = tau
            if run.classify:
                scores[s] = _label_words(run, ft_model, pre.tokenizer, s, f"{s}-ft")
        del ft_model
    return taus, scores


def _graft_mask(run: _Run, pre: _Pre, tau: dict[str, Any], skill: str, gc: GraftConfig) -> tuple[Mask, list]:
    """The skill's graft at `gc.sparsity`: found on its train items and selected on train + validation, or read back
    from `masks/` (saved there, so a killed run resumes)."""
    path = run.out / "masks" / f"{skill}-graft-{gc.sparsity:g}.safetensors"
    hist_path = path.with_suffix(".history.json")
    if path.is_file():
        return Mask.load(path), json.loads(hist_path.read_text())
    run.console.print(f"[bold]{skill}[/bold] sparsity {gc.sparsity:g}: finding the mask ({gc.steps} steps)")
    batches = completion_batches(pre.tokenizer, run.items[skill]["train"], gc.batch_size)
    mask, history = find_mask(pre.model, pre.weights, tau, batches, partial(_selection_score, run, pre, skill), gc,
                              pattern=run.lc.pattern, on_step=partial(_print_step, run.console))
    mask.save(path)
    write_json(history, hist_path)  # type: ignore[arg-type]
    return mask, history


def _selection_score(run: _Run, pre: _Pre, skill: str) -> float:
    """How the base model with a mask grafted does on the skill's train + validation items (higher is better)."""
    select = {"train": run.items[skill]["train"], "validation": run.items[skill]["validation"]}
    if run.classify:  # the paper's rule: train + validation accuracy of the label words
        return sum(label_calibration(pre.model, pre.tokenizer, its, pre.conversational)["accuracy"]
                   for its in select.values()) / 2
    # A worked completion is many tokens, and a grafted model rarely reproduces all of them (that accuracy sits at
    # 0 and ranks nothing), so the rounded masks are ranked by minus the mean answer loss on the same items.
    sc = answer_scores(pre.model, pre.tokenizer, select, pre.conversational)
    return -(sc["train"]["loss"] + sc["validation"]["loss"]) / 2


def _print_step(console: Console, r: dict[str, Any]) -> None:
    console.print(f"  step {r['step']}: score {r['score']:.3f}, loss {r['loss']:.3f},"
                  f" {r['count']} coordinates (+{r['flipped_in']} −{r['flipped_out']})")


def _masks_at(run: _Run, pre: _Pre, tau: dict[str, Any], skill: str, gc: GraftConfig) -> tuple[Mask, dict[str, Any]]:
    """The skill's graft at `gc.sparsity` and its two baselines at the graft's size (movement, random), each grafted
    onto the base and measured."""
    mask, history = _graft_mask(run, pre, tau, skill, gc)
    kinds = {"graft": mask, "movement": movement_mask(tau, gc.sparsity),
             "random": random_mask(tau, max(1, mask.count), seed=gc.seed)}
    measure = _grafted_label_words if run.classify else _grafted_generation
    n_graftable = sum(t.numel() for t in tau.values())
    row: dict[str, Any] = {"history": history}
    for kind, m in kinds.items():
        got = measure(run, pre, tau, m, skill, f"{skill}-{kind}-{gc.sparsity:g}")
        row[kind] = got | {"count": m.count, "sparsity": m.count / n_graftable, "tensors": _by_module(m)}
    return mask, row


def _generation(run: _Run, model: ModelConfig, skill: str, name: str) -> dict[str, Any]:
    """Accuracy by generation on the skill's held-out test items, graded and every item counted: the loop's own
    profile (`profiles/<name>.json`), each generation kept in the run store, so a resumed run reads it back."""
    prof = profile(model, held_out(run.data, run.lc, skill), run.ev, run.runs_dir, run.out / "profiles" / f"{name}.json",
                   run.console, models=run.models)
    return _overall(prof.to_dict())


def _label_words(run: _Run, model: Any, tokenizer: Any, skill: str, name: str) -> dict[str, Any]:
    """Label-word accuracy and calibration of an in-memory model on the skill's test items (kept in
    `profiles/<name>.json`, so a resumed run does not score it again)."""
    done = run.out / "profiles" / f"{name}.json"
    if done.is_file():
        return json.loads(done.read_text())
    got = label_calibration(model, tokenizer, run.items[skill]["test"], bool(tokenizer.chat_template))
    write_json(got, done)
    return got


def _grafted_label_words(run: _Run, pre: _Pre, tau: dict[str, Any], mask: Mask, skill: str,
                         name: str) -> dict[str, Any]:
    """The mask grafted onto the base in memory and scored there: no model folder, no engine."""
    if not (run.out / "profiles" / f"{name}.json").is_file():
        graft(pre.params, pre.weights, tau, mask)
    return _label_words(run, pre.model, pre.tokenizer, skill, name)


def _grafted_generation(run: _Run, pre: _Pre, tau: dict[str, Any], mask: Mask, skill: str,
                        name: str) -> dict[str, Any]:
    """The mask grafted onto the base, written as a model folder and profiled by generation; the folder is deleted
    once profiled (`--keep-models` keeps it)."""
    done = run.out / "profiles" / f"{name}.json"
    # the run store knows a model folder by its path: the mask's digest in it keeps a profile of one mask from ever
    # standing for another's
    folder = run.out / "grafted" / f"{name}-{mask.digest()}"
    if done.is_file():
        got = _overall(json.loads(done.read_text()))
    else:
        graft(pre.params, pre.weights, tau, mask)
        pre.model.save_pretrained(folder)
        pre.tokenizer.save_pretrained(folder)
        got = _generation(run, ModelConfig(str(folder), backend=run.base.backend, device=run.base.device), skill, name)
    run.models.close()
    if not run.lc.keep_models:
        shutil.rmtree(folder, ignore_errors=True)
    return got


def _summary(r: dict[str, Any], skill: str, sp: str) -> str:
    """One line per skill and sparsity: the graft against its baselines and the two ends."""
    g = r["masks"][sp]["graft"]
    return (f"{skill} @ {sp}: graft {g['accuracy']:.0%} ({g['count']} coords, gain recovery "
            f"{_ratio(g['gain_recovery'])}), movement {r['masks'][sp]['movement']['accuracy']:.0%}, random "
            f"{r['masks'][sp]['random']['accuracy']:.0%}; fine-tuned {r['finetuned']['accuracy']:.0%}, "
            f"base {r['base']['accuracy']:.0%}")


def held_out(data: DataConfig, lc: LocalizeConfig, skill: str) -> DataConfig:
    """Where a skill's held-out test items come from: the suite's test split, or `--test-data`."""
    if data.data:
        return replace(data, data=lc.test_data, skills=(skill,), k_values=(1,), limit=lc.test_limit)
    return replace(data, split="test", skills=(skill,), limit=lc.test_limit)


def _items(data: DataConfig, lc: LocalizeConfig) -> tuple[dict[str, dict[str, list]], dict[str, list[str]]]:
    """Each skill's single-skill train, validation and test items, and its prerequisites among `lc.skills`.

    From a suite: its splits. From files (`--data` the train file, `--validation-data`, `--test-data`): the items
    whose only skill is that one; without a validation file, train items the mask's gradient does not see."""
    if not data.data:
        suite = suite_of(data)
        for s in lc.skills:
            if s not in suite.skills.ids:
                raise unknown_name("skill", s, list(suite.skills.ids))
        items = {s: {"train": load_items(replace(data, split="train", skills=(s,), limit=lc.train_limit))[0],
                     "validation": validation_items(suite, s, lc.val_limit, data.seed),
                     "test": load_items(held_out(data, lc, s))[0]} for s in lc.skills}
        prereq = {s: [p for p in suite.skills[s].prerequisites if p in lc.skills] for s in lc.skills}
        trained, where = [it for by in items.values() for it in by["train"]], "the suite's train and validation items"
    else:
        if not lc.test_data:
            raise ConfigError(f"--data {data.data}: give --test-data too (held-out items the recovery is measured on).")
        everything = load_items(replace(data, limit=None))[0]
        known = sorted({x for it in everything for x in it.skills})
        for s in lc.skills:
            if s not in known:
                raise unknown_name(f"skill in {data.data}", s, known)
        items = {}
        for s in lc.skills:
            one = replace(data, skills=(s,), k_values=(1,))
            train = load_items(replace(one, limit=lc.train_limit))[0]
            if lc.validation_data:
                val = load_items(replace(one, data=lc.validation_data, limit=lc.val_limit))[0]
            else:
                used = {it.id for it in train}
                rest = [it for it in load_items(replace(one, limit=None))[0] if it.id not in used]
                val = stratified_sample(rest, lc.val_limit, data.seed)
            items[s] = {"train": train, "validation": val, "test": load_items(held_out(data, lc, s))[0]}
        prereq = {s: [] for s in lc.skills}
        trained, where = everything, f"--data {data.data}"  # the whole file: what the fine-tune learned from
    # Before any model loads: recovery is measured on items neither the fine-tune's file nor the mask's selection saw.
    selected = [it for by in items.values() for it in by["validation"]]
    assert_disjoint([*trained, *selected], [it for by in items.values() for it in by["test"]],
                    where + (f" and --validation-data {lc.validation_data}" if lc.validation_data else ""),
                    f"--test-data {lc.test_data}" if data.data else f"suite {data.suite}, test split")
    for s, by in items.items():
        for split in ("train", "validation", "test"):
            if not by[split]:
                raise ConfigError(f"skill {s!r} has no single-skill {split} items: nothing to localize it on.")
    return items, prereq


def gain_recovery(grafted: float, base: float, finetuned: float) -> float | None:
    """The share of the fine-tune's gain over the base model that a grafted model keeps: 0 when it scores as the
    base does, 1 as the fine-tune does. None when the fine-tune gained nothing: there is no gain to keep."""
    return (grafted - base) / (finetuned - base) if finetuned > base else None


def derive(r: dict[str, Any]) -> None:
    """Each mask's gain recovery and accuracy ratio, from the accuracies of one skill's result `r` (which a
    report recomputes, so results written before a field existed get it too)."""
    b, f = r["base"]["accuracy"], r["finetuned"]["accuracy"]
    for row in r["masks"].values():
        for kind in ("graft", "movement", "random"):
            m = row[kind]
            m.pop("recovery", None)  # the accuracy ratio's former name, read as a share of the gain it is not
            m["gain_recovery"] = gain_recovery(m["accuracy"], b, f)
            m["accuracy_ratio"] = m["accuracy"] / f if f else None


def _overall(prof: dict[str, Any]) -> dict[str, Any]:
    o = prof["overall"]
    return {k: o[k] for k in ("accuracy", "n", "correct", "ci_low", "ci_high", "unparsed")}


def _by_module(m: Mask) -> dict[str, int]:
    """Grafted coordinates per kind of tensor (q_proj, mlp.down_proj, input_layernorm, ...), layers summed."""
    out: dict[str, int] = {}
    for n, c in m.touched().items():
        key = re.sub(r"^.*\.layers\.\d+\.", "", n).removesuffix(".weight")
        out[key] = out.get(key, 0) + c
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def settings(res: dict[str, Any]) -> str:
    """What the masks were found on, from the run's config: the kind of delta and the search's length."""
    cfg, n = res["config"], {r["base"]["n"] for r in res["skills"].values()}
    fts = cfg["finetuned"]
    fts = [fts] if "model" in fts else list(fts.values())  # one model for every skill, or one per skill
    deltas = {"a LoRA adapter merged into the base" if f.get("adapter") else "a full fine-tune" for f in fts}
    g, lc = cfg["graft"], cfg["localize"]
    return (f"τ = fine-tuned − base from {' and '.join(sorted(deltas))}; mask search: {g['steps']} steps at score lr "
            f"{g['lr']:g} (the paper: a full fine-tune, 10 to 100 steps), on {lc['train_limit']} train + "
            f"{lc['val_limit']} validation items per skill; measured on {', '.join(map(str, sorted(n)))} held-out test "
            "items per skill.")


def write_markdown(res: dict[str, Any], path: Path) -> None:
    lines = ["# Skill localization by grafting", "",
             f"{res['graftable_parameters']:,} graftable parameters (decoder blocks) of {res['all_parameters']:,}. "
             + settings(res), "",
             "Accuracy on each skill's held-out single-skill test items, and in brackets the gain recovery (grafted − "
             "base) / (fine-tuned − base): 0 keeps none of the fine-tune's gain, 1 all of it. graft / ft is the raw "
             "accuracy ratio, which counts the base model's own accuracy as recovered.", "",
             "| skill | sparsity | coords | graft (gain recovery) | graft / ft | movement | random | fine-tuned | base |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s, r in res["skills"].items():
        derive(r)
        for sp, row in r["masks"].items():
            g = row["graft"]
            lines.append(f"| {s} | {sp} | {g['count']:,} ({g['sparsity']:.1e}) | " + " | ".join(
                [_acc(g), _ratio(g["accuracy_ratio"]), _acc(row["movement"]), _acc(row["random"])])
                         + f" | {r['finetuned']['accuracy']:.1%} | {r['base']['accuracy']:.1%} |")
    if res.get("measure") == "label words":
        lines += ["", "Expected calibration error (10 bins) of the most probable label word, on the same test items:",
                  "", "| skill | sparsity | graft | movement | random | fine-tuned | base |", "|---|---|---|---|---|---|---|"]
        for s, r in res["skills"].items():
            for sp, row in r["masks"].items():
                lines.append(f"| {s} | {sp} | " + " | ".join(f"{row[k]['ece']:.3f}" for k in ("graft", "movement",
                                                                                             "random"))
                             + f" | {r['finetuned']['ece']:.3f} | {r['base']['ece']:.3f} |")
    for sp, mat in res.get("overlap", {}).items():
        names = list(res["skills"])
        lines += ["", f"Overlap |γ_i ∩ γ_j| / |γ_j| at sparsity {sp} (row i, column j):", "",
                  "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {a} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for a, row in zip(names, mat)]
    path.write_text("\n".join(lines) + "\n")


def _acc(m: dict[str, Any]) -> str:
    return f"{m['accuracy']:.1%} ({_ratio(m['gain_recovery'])})"


def main(argv: list[str] | None = None) -> None:
    """Rewrite each run folder's localize.json (derived fields) and localize.md, loading no model."""
    p = argparse.ArgumentParser(description="rewrite localize.md (and the derived fields of localize.json)")
    p.add_argument("dirs", nargs="+", type=Path, help="localize output folders")
    for d in p.parse_args(argv).dirs:
        res = json.loads((d / "localize.json").read_text())
        for r in res["skills"].values():
            derive(r)
        write_json(res, d / "localize.json")
        write_markdown(res, d / "localize.md")


def plot_overlap(res: dict[str, Any], sp: str, path: Path) -> None:
    """The overlap heat-map beside the prerequisite graph of the same skills (p -> s: s builds on p)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res["skills"])
    n = len(names)
    prereq = [[1.0 if a in res["prerequisites"][b] else 0.0 for b in names] for a in names]
    fig, axes = plt.subplots(1, 2, figsize=(2.5 + 1.6 * n, 1.4 + 0.7 * n), dpi=120)
    for ax, mat, title in ((axes[0], res["overlap"][sp], f"mask overlap |γ_i ∩ γ_j| / |γ_j| (sparsity {sp})"),
                           (axes[1], prereq, "prerequisites (row i is one of column j's)")):
        ax.imshow(mat, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), names, rotation=45, ha="right")
        ax.set_yticks(range(n), names)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{mat[i][j]:.3f}", ha="center", va="center", fontsize=8,
                        color="white" if mat[i][j] > 0.6 else "black")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
