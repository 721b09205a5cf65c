"""Skills in the weights (issue 15): per-skill adapters composed against joint training, and a skill removed.

1. **Library.** Per seed, one LoRA per skill of `--skills` (A, B), each on `--budget` single-skill train items
   (`skillgap.library.build_library`), from the embedded model.
2. **Joint.** One LoRA on the union of exactly those examples, the same settings (so twice the steps).
3. **Compositions** of the library's adapters through PEFT's `add_weighted_adapter`: `cat` at weights 1, 1
   (the exact sum of the deltas), `linear` at 1, 1 (A and B summed separately: cross terms), `ties` and
   `dare_linear` at density 0.5; and Arrow routing (Ostapenko et al., 2024) over the two, top-k per token and
   layer (`--arrow-top-k`), which cannot be merged and so runs on the hf backend.
4. **Removal.** The joint adapter with A's library adapter subtracted at each `--strengths` λ
   (`cat`, weights 1 and −λ), and the same by Ext-Sub (Hu et al., AAAI 2024), which subtracts only the part of
   A's adapter that the joint one does not share (`skillgap.library.ext_sub`): how much A drops, and how much
   every other measured skill moves.
5. **Measures** on one fixed set of test items shared by every model: single-skill items of A, of B, items
   composing exactly A and B, and single-skill items of `--also` skills (those the base model has, for
   collateral damage; all their test items where there are fewer than `--test-limit`). Accuracy per group,
   means over seeds with a 95% bootstrap over seeds and items; each model against the joint adapter and the
   base model: the paired difference (same bootstrap), an exact McNemar test per seed, and over the seeds the
   exact clustered McNemar test (every seed measures the same items, so an item's seeds are kept together),
   with Holm's adjustment over each table.

Settings the outputs state: Ext-Sub's anti-expert is A's own library adapter, trained on clean A items (the
paper's is trained on deficient data), and `linear` is measured at weights 1, 1 only.

Resumable: the library and trainings skip when done, profiles live in the work directory's run store, and
results already in `--output-path` are not measured again. Both remember the settings they were made with: an
invocation with other settings is refused before any work, rather than mixing or discarding them.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/weights.py --seeds 0,1,2 \\
        --work-dir /var/tmp/skillgap-weights --output-path benchmarks/results/weights.json

Smoke run (a few minutes): --model scratch-tiny --backend hf --budget 8 --train-batch-size 4 --test-limit 4
    --seeds 0 --strengths 1 --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, load_items
from skillgap.errors import ConfigError
from skillgap.items import write_jsonl
from skillgap.library import build_library, combine, ext_sub, router
from skillgap.models import ModelConfig, ModelPool
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.train import TrainConfig, train
from skillgap.verify import adjust, assert_disjoint, cluster_mcnemar_p, paired_delta

from common import (benchmark_parser, bootstrap_mean, fmt_mean, fmt_points, model_name, numbers, option,
                    read_results, settings_of, write_json)

COMPOSITIONS = {"cat": ([1.0, 1.0], None), "linear": ([1.0, 1.0], None), "ties": ([1.0, 1.0], 0.5),
                "dare_linear": ([1.0, 1.0], 0.5)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = benchmark_parser(__doc__, "skillgap-weights", "weights.json", max_new_tokens=128)
    p.add_argument("--skills", default="add_multi,mul_1digit", help="A,B: the two skills of the library")
    p.add_argument("--also", default="add_1digit,mul_facts,compare", help="other skills measured for side effects")
    p.add_argument("--budget", type=int, default=256, help="train items per skill adapter")
    p.add_argument("--compositions", default=",".join(COMPOSITIONS), help="fixed-weight merges of the library to "
                                                                          "measure")
    p.add_argument("--strengths", default="0.5,1,2", help="negation strengths for removing A")
    p.add_argument("--arrow-top-k", default="1", help="Arrow routers to measure: adapters kept per token (1 = hard "
                                                      "routing; 2 = a softmax mix of both)")
    p.add_argument("--test-limit", type=int, default=50, help="test items per group")
    p.add_argument("--lr", type=float, default=TrainConfig.learning_rate)
    return p.parse_args(argv)


# Which models are measured and how results are shown: more (or fewer) of them extend a run, they do not change
# what is measured; every other option does.
EXTEND = ("seeds", "work_dir", "output_path", "report_only", "bootstrap", "arrow_top_k", "compositions", "strengths")
SETTINGS_NOTE = ("Ext-Sub's anti-expert is A's own library adapter, trained on clean A items (the paper's is an "
                 "adapter trained on deficient data); PEFT's `linear` is measured at weights 1, 1 only.")


def refuse_other_settings(old: dict[str, str], new: dict[str, str], where: Path, other: str) -> None:
    """Results or trainings made with other settings are neither mixed with new ones nor silently dropped."""
    for k, v in new.items():
        if k not in EXTEND and k in old and old[k] != v:
            raise SystemExit(f"{where}: made with {option(k)} {old[k]}, not {v}; pass that, or "
                             f"another {other}")


def test_items(a: argparse.Namespace, skills: list[str], also: list[str]) -> tuple[Path, dict[str, list[str]]]:
    """One JSONL of every group's test items (ids unique), and the ids of each group."""
    a_, b_ = skills
    groups = {f"{s} alone": DataConfig(suite="arith", split="test", skills=(s,), k_values=(1,), limit=a.test_limit)
              for s in [a_, b_, *also]}
    groups[f"{a_}+{b_}"] = DataConfig(suite="arith", split="test", skills=(a_, b_), k_values=(2,), limit=a.test_limit)
    items, ids = [], {}
    for name, cfg in groups.items():
        got = all_up_to(cfg)
        ids[name] = [it.id for it in got]
        items += got
    path = a.work_dir / "test.jsonl"
    write_jsonl(items, path)
    return path, ids


def all_up_to(cfg: DataConfig) -> list:
    """`cfg.limit` items, or every test item there is: a skill with a small domain (the 9×9 facts, one-digit
    sums) has fewer than 50 distinct test items, and these are the skills the base model has."""
    for n in range(cfg.limit, 0, -1):
        try:
            return load_items(replace(cfg, limit=n))[0]
        except ConfigError:  # arith: fewer than n distinct items of this split
            continue
    raise SystemExit(f"no {cfg.split} items of {cfg.skills}")


def bits_of(prof: dict[str, Any]) -> dict[str, bool]:
    return {r["id"]: bool(r["correct"]) for r in prof["records"]}


def boot(runs: list[dict[str, bool]], ids: list[str], n_boot: int,
         ref: list[dict[str, bool]] | None = None) -> list[float]:
    """Mean accuracy over seeds on `ids` (or, given `ref`, the same seeds' paired difference runs - ref), with
    a 95% bootstrap over seeds and items."""
    import numpy as np

    bits = np.array([[r[i] for i in ids] for r in runs], dtype=float)
    if ref is not None:
        bits -= np.array([[r[i] for i in ids] for r in ref], dtype=float)
    return bootstrap_mean(bits, n_boot)


def versus(res: dict[str, Any], ref: str, n_boot: int) -> list[dict[str, Any]]:
    """Each model against `ref` on each group, over the seeds that measured both: the paired difference with
    its bootstrap, exact McNemar per seed, the clustered test over seeds, Holm over the comparisons in which
    some item changed (the others have p = 1 in any family)."""
    out = []
    for m in res["order"]:
        seeds = [x for x, r in res["seeds"].items() if m in r and ref in r]
        if m in ("joint", "base") or not seeds:
            continue
        for n, ids in res["groups"].items():
            runs, refs = [res["seeds"][x][m] for x in seeds], [res["seeds"][x][ref] for x in seeds]
            tests = [paired_delta([(q[i], r[i]) for i in ids]) for r, q in zip(runs, refs)]
            changes = [sum(r[i] - q[i] for r, q in zip(runs, refs)) for i in ids]
            out.append({"model": m, "group": n, "seeds": seeds, "delta": boot(runs, ids, n_boot, ref=refs),
                        "per_seed": [{"seed": x, "gained": d["gained"], "lost": d["lost"], "p_value": d["p_value"]}
                                     for x, d in zip(seeds, tests)],
                        "items_up": sum(c > 0 for c in changes), "items_down": sum(c < 0 for c in changes),
                        "p_value": cluster_mcnemar_p(changes)})
    family = [v for v in out if any(d["gained"] or d["lost"] for d in v["per_seed"])]
    for v, p in zip(family, adjust([v["p_value"] for v in family], "holm")):
        v.update(p_holm=p, family=len(family))
    return out


def summarize(res: dict[str, Any], n_boot: int) -> dict[str, Any]:
    """What the tables and the README show, from the per-item grades."""
    models = [m for m in res["order"] if any(m in r for r in res["seeds"].values())]
    return {"accuracy": {m: {"seeds": sum(m in r for r in res["seeds"].values()),
                             **{n: boot([r[m] for r in res["seeds"].values() if m in r], ids, n_boot)
                                for n, ids in res["groups"].items()}} for m in models},
            "versus": {ref: versus(res, ref, n_boot) for ref in ("joint", "base")}}


def report(res: dict[str, Any], path: Path) -> None:
    """The markdown, from the summary in the results."""
    groups, sm = res["groups"], res["summary"]
    names = list(groups)
    lines = ["# Skills in the weights: a library of skill adapters (issue 15)", "",
             f"`{res['config']['model']}`; library skills `{res['config']['skills']}`, {res['config']['budget']} "
             "single-skill train items per adapter; the joint adapter trains on the union of the same examples. "
             "Accuracy on shared test items, mean over seeds [95% bootstrap over seeds and items]. `−λA` rows: the "
             "joint adapter with A's library adapter subtracted at strength λ; `ext-sub −λA`: the same after "
             "extracting what the two adapters share (Ext-Sub).", "", f"Settings: {SETTINGS_NOTE}", "",
             "| model | seeds | " + " | ".join(f"{n} (n={len(groups[n])})" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for m, row in sm["accuracy"].items():
        lines.append(f"| {m} | {row['seeds']} | " + " | ".join(fmt_mean(row[n]) for n in names) + " |")
    for ref, rows in sm["versus"].items():
        family = next((v["family"] for v in rows if "family" in v), 0)
        lines += ["", (f"Paired against the {ref} {'adapter' if ref == 'joint' else 'model'} on the same items "
                       "(points [95% bootstrap over seeds and items]; items won and lost and exact McNemar p per "
                       "seed; over the seeds, the items whose summed change is up or down and the exact clustered "
                       f"McNemar test, items as clusters; Holm over the {family} comparisons of this table in which "
                       "some item changed; the others are left out):"), "",
                  "| model | group | difference | per seed | over seeds | Holm |", "|---|---|---|---|---|---|"]
        for v in rows:
            if "family" not in v:
                continue
            lines.append(f"| {v['model']} | {v['group']} | {fmt_points(v['delta'])} | "
                         + ", ".join(f"s{x['seed']} +{x['gained']}/−{x['lost']} (p={x['p_value']:.2g})"
                                     for x in v["per_seed"])
                         + f" | {v['items_up']} up, {v['items_down']} down (p={v['p_value']:.2g}) | "
                         f"{v['p_holm']:.2g} |")
    path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Plan:
    """The models an invocation measures, read from its options and checked before any work."""

    skills: list[str]  # A, B: the library's two skills
    also: list[str]
    compositions: dict[str, tuple[list[float], float | None]]
    strengths: list[float]
    arrow_k: list[int]

    @classmethod
    def of(cls, a: argparse.Namespace) -> Plan:
        skills = a.skills.split(",")
        if len(skills) != 2:
            raise SystemExit("--skills: name exactly two skills, A,B")
        if unknown := set(numbers(a.compositions, str)) - set(COMPOSITIONS):
            raise SystemExit(f"--compositions: {sorted(unknown)} not among {list(COMPOSITIONS)}")
        return cls(skills, numbers(a.also, str), {c: COMPOSITIONS[c] for c in numbers(a.compositions, str)},
                   numbers(a.strengths, float), numbers(a.arrow_top_k))

    def order(self) -> list[str]:
        """The models' names, in the order the tables show them."""
        return ["base", "joint", *[f"{s} adapter" for s in self.skills],
                *[f"library {c}" for c in self.compositions], *[f"library arrow top-{k}" for k in self.arrow_k],
                *[f"joint −{x:g}A" for x in self.strengths], *[f"joint ext-sub −{x:g}A" for x in self.strengths]]


def save(res: dict[str, Any], a: argparse.Namespace) -> None:
    """The summary, the results file and the markdown, as they stand."""
    res["summary"] = summarize(res, a.bootstrap)
    write_json(res, a.output_path)
    report(res, a.output_path.with_suffix(".md"))


@dataclass
class Measure:
    """Measures one model of one seed on the shared test items, unless the results have it, and saves."""

    a: argparse.Namespace
    res: dict[str, Any]
    data: DataConfig
    models: ModelPool
    console: Console
    clock: float = field(default_factory=time.perf_counter)  # this invocation's measuring time goes to the total

    def __call__(self, seed: int, label: str, model: ModelConfig, out: Path) -> None:
        row = self.res["seeds"].setdefault(str(seed), {})
        if label in row:
            return
        ev = EvalConfig(max_new_tokens=self.a.max_new_tokens)
        row[label] = bits_of(profile(model, self.data, ev, self.a.work_dir / "runs", out, self.console,
                                     models=self.models).to_dict())
        self.console.print(f"seed {seed} {label}: " + ", ".join(
            f"{n} {sum(row[label][i] for i in ids) / len(ids):.0%}" for n, ids in self.res["groups"].items()))
        now = time.perf_counter()
        self.res["seconds"] = round(self.res.get("seconds", 0) + now - self.clock, 1)
        self.clock = now
        save(self.res, self.a)


def train_library_and_joint(a: argparse.Namespace, base: ModelConfig, skills: list[str], seed: int, w: Path,
                            test: DataConfig, console: Console) -> tuple[Any, Path]:
    """One LoRA per skill (the library) and one on the union of exactly their items (joint); both skip when done."""
    cfg = TrainConfig(method="lora", learning_rate=a.lr, batch_size=a.train_batch_size, eval_every=0, save_every=1000,
                      seed=seed)
    union = [it for s in skills
             for it in load_items(DataConfig(suite="arith", split="train", skills=(s,), limit=a.budget, seed=seed))[0]]
    # the library's adapters and the joint one train on these items: none may be a measured item
    assert_disjoint(union, load_items(test)[0], "the library's and the joint adapter's training items", test.data)
    lib = build_library(base, DataConfig(suite="arith", seed=seed), skills, a.budget, cfg, w / "library", console)
    joint_dir = w / "joint"
    if not (joint_dir / "adapter" / "adapter_config.json").is_file():
        random.Random(seed).shuffle(union)  # the two skills interleaved, as one mixed training set
        train(base, union, replace(cfg, max_steps=max(1, len(union) // a.train_batch_size)), joint_dir,
              console=console)
    return lib, joint_dir / "adapter"


def measure_seed(a: argparse.Namespace, plan: Plan, seed: int, base: ModelConfig, base_folder: Path,
                 measure: Measure) -> None:
    """Every model of one seed: the base, the joint and library adapters, their merges, removals and routers."""
    w = a.work_dir / f"seed{seed}"
    measure(seed, "base", base, a.work_dir / "base.json")
    measure.models.close()
    lib, joint = train_library_and_joint(a, base, plan.skills, seed, w, measure.data, measure.console)
    adapters = {s: lib.adapter(s) for s in plan.skills}
    measure(seed, "joint", replace(base, adapter=str(joint)), w / "joint.json")
    for s in plan.skills:
        measure(seed, f"{s} adapter", replace(base, adapter=str(adapters[s])), w / f"{s}.json")
    for c, (weights, density) in plan.compositions.items():
        out = w / f"library-{c}"
        if not (out / "adapter_config.json").is_file():
            combine(base_folder, adapters, weights, out, c, density)
        measure(seed, f"library {c}", replace(base, adapter=str(out)), w / f"library-{c}.json")
    removed = adapters[plan.skills[0]]
    for x in plan.strengths:
        out = w / f"joint-minus-{x:g}A"
        if not (out / "adapter_config.json").is_file():
            combine(base_folder, {"joint": joint, "removed": removed}, [1.0, -x], out, "cat")
        measure(seed, f"joint −{x:g}A", replace(base, adapter=str(out)), w / f"joint-minus-{x:g}A.json")
    for x in plan.strengths:
        out = w / f"joint-extsub-{x:g}A"
        if not (out / "adapter_config.json").is_file():
            ext_sub(joint, removed, x, out)
        measure(seed, f"joint ext-sub −{x:g}A", replace(base, adapter=str(out)), w / f"joint-extsub-{x:g}A.json")
    for k in plan.arrow_k:  # last: the hf backend, unmerged, is the slowest to measure
        out = router(adapters, w / f"library-arrow-top{k}", top_k=k)
        measure(seed, f"library arrow top-{k}", replace(base, backend="hf", adapter=str(out)),
                w / f"library-arrow-top{k}.json")


def check_settings(a: argparse.Namespace, res: dict[str, Any]) -> dict[str, str]:
    """This invocation's settings, refused if the results or the work directory's trainings were made with others."""
    config = settings_of(a)
    made = a.work_dir / "settings.json"  # the work directory's trainings skip when done: made with what?
    refuse_other_settings(res.get("config", {}), config, a.output_path, "--output-path")
    refuse_other_settings(read_results(made), config, made, "--work-dir")
    made.write_text(json.dumps(config, indent=2) + "\n")
    return config


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    console = Console(stderr=True)
    if a.report_only:
        save(json.loads(a.output_path.read_text()), a)
        return
    plan = Plan.of(a)
    a.work_dir.mkdir(parents=True, exist_ok=True)
    res = read_results(a.output_path)
    config = check_settings(a, res)
    items_path, groups = test_items(a, plan.skills, plan.also)
    if res.get("groups", groups) != groups:
        raise SystemExit(f"{a.output_path}: measured on other test items; pass another --output-path")
    from skillgap.models.sources import materialize, resolve_source

    name = model_name(a.model, "arith")
    base, base_folder = ModelConfig(name, backend=a.backend), materialize(resolve_source(name))
    order = plan.order()
    order += [m for m in res.get("order", []) if m not in order]  # models measured before, not asked for now
    res.update(config=config, groups=groups, order=order)
    res.setdefault("seeds", {})
    data = DataConfig(data=str(items_path), split="test", limit=None)
    with ModelPool() as models:
        measure = Measure(a, res, data, models, console)
        for seed in numbers(a.seeds):
            measure_seed(a, plan, seed, base, base_folder, measure)
    save(res, a)


if __name__ == "__main__":
    main()
