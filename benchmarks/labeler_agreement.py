"""How well do skillgap's labellers agree with the released GSM8K and MATH skill labels?

The reference labels are AdaptMI's (princeton-pli/AdaptMI), made with GPT-4o-mini following
Didolkar et al. (2024): one coarse skill per question, 14 skills for GSM8K, 11-24 per MATH subject.
Each labeller labels the *test* questions; the embed labeller's neighbours are the *train* labels
(never the test item itself). MATH is labelled subject by subject against that subject's skills,
as the references were made.

Rows: embed (descriptions only), embed (train neighbours only), embed (the default mix with train
neighbours; and with the test labels themselves as neighbours, each item's own label hidden, which
is the setting of `skillgap label --skills <the same labelled file>`), the teacher
labeller on the first --teacher-limit items (the embedded SmolLM2-135M unless --teacher-base-url),
and two majority-class baselines (the train split's, and the test split's own: an oracle). Per-skill precision / recall / F1 plus micro and macro F1.

    python benchmarks/labeler_agreement.py --output benchmarks/results/labeler_agreement.json
    python benchmarks/labeler_agreement.py --teacher gpt-4o-mini --teacher-base-url https://api.openai.com/v1

Needs ../shared/data (GSM8K, MATH, math-skill-labels). Minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

from skillgap.formats import read_items
from skillgap.items import Item
from skillgap.label import LabelConfig, item_text, label_items
from skillgap.models import ModelConfig
from skillgap.skills import Skill, SkillSet
from skillgap.teacher import Teacher


def prf(gold: list[tuple[str, ...]], pred: list[tuple[str, ...]], skills: list[str]) -> dict:
    """Per-skill precision, recall and F1 over label sets, with micro and macro averages."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        for s in set(p) & set(g):
            tp[s] += 1
        for s in set(p) - set(g):
            fp[s] += 1
        for s in set(g) - set(p):
            fn[s] += 1

    def f(t: int, a: int, b: int) -> tuple[float, float, float]:
        p = t / (t + a) if t + a else 0.0
        r = t / (t + b) if t + b else 0.0
        return p, r, 2 * p * r / (p + r) if p + r else 0.0

    per = {s: dict(zip(("precision", "recall", "f1"), f(tp[s], fp[s], fn[s])), support=tp[s] + fn[s])
           for s in skills}
    mp, mr, mf = f(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    present = [s for s in skills if per[s]["support"]]
    return {"per_skill": per, "micro": {"precision": mp, "recall": mr, "f1": mf},
            "macro_f1": sum(per[s]["f1"] for s in present) / len(present), "n": len(gold)}


def read_labels(path: Path, key: str) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def inventory_of(rows: list[dict]) -> SkillSet:
    counts = Counter(s for r in rows for s in r["skills"])
    return SkillSet(tuple(Skill(s, s.replace("_", " ").capitalize()) for s, _ in counts.most_common()))


def run_labellers(name: str, groups: list[tuple[str, list[Item], list[tuple[str, ...]], SkillSet, list]],
                  teacher: Teacher | None, teacher_limit: int, embed: bool = True) -> dict:
    """groups: (group, test items, gold labels, inventory, train examples)."""
    variants = {} if not embed else {"embed (descriptions only)": (LabelConfig(weight=0.0), "train"),
                "embed (train neighbours only)": (LabelConfig(weight=1.0), "train"),
                "embed (default, train neighbours)": (LabelConfig(), "train"),
                "embed (default, test neighbours, leave-one-out)": (LabelConfig(), "test")}
    weights: dict[str, list] = {}
    out: dict = {}
    all_skills = sorted({s for _, _, _, inv, _ in groups for s in inv.ids})
    for vname, (cfg, source) in variants.items():
        t0 = time.time()
        gold, pred = [], []
        for _, items, g, inv, examples in groups:
            if source == "test":  # the Done-when setting: the labelled file itself, each item's own label hidden
                examples = [(item_text(it), gi) for it, gi in zip(items, g)]
            labelled = label_items(items, inv, cfg, examples)
            gold += g
            pred += [it.skills for it in labelled]
            weights.setdefault(vname, []).append(labelled[0].metadata["labels"]["neighbour_weight"])
        out[vname] = prf(gold, pred, all_skills) | {"seconds": round(time.time() - t0, 1),
                                                    "neighbour_weight": weights[vname]}
        print(f"{name} {vname}: micro F1 {out[vname]['micro']['f1']:.3f}, macro F1 {out[vname]['macro_f1']:.3f} "
              f"({out[vname]['seconds']} s)", flush=True)
    gold, pred = [], []
    for _, items, g, inv, examples in groups:  # majority class of the train labels, per group
        top = Counter(s for _, sk in examples for s in sk).most_common(1)[0][0]
        gold += g
        pred += [(top,)] * len(items)
    out["majority class of train"] = prf(gold, pred, all_skills)
    gold, pred = [], []
    for _, items, g, _, _ in groups:  # an oracle baseline: the most frequent *test* label, per group
        top = Counter(s for sk in g for s in sk).most_common(1)[0][0]
        gold += g
        pred += [(top,)] * len(items)
    out["majority class of test (oracle)"] = prf(gold, pred, all_skills)
    if teacher is not None and teacher_limit:
        t0 = time.time()
        gold, pred, invalid = [], [], 0
        per_group = max(1, teacher_limit // len(groups))
        for _, items, g, inv, _ in groups:
            labelled = label_items(items[:per_group], inv, LabelConfig(labeler="teacher"), teacher=teacher)
            gold += g[:per_group]
            pred += [it.skills for it in labelled]
            invalid += sum(it.metadata["labels"]["status"] != "ok" for it in labelled)
        key = f"teacher {teacher.identity}"
        out[key] = prf(gold, pred, all_skills) | {"invalid": invalid, "seconds": round(time.time() - t0, 1),
                                                   "calls": teacher.calls, "cache_hits": teacher.hits}
        print(f"{name} {key}: micro F1 {out[key]['micro']['f1']:.3f} on {len(gold)} items, {invalid} invalid "
              f"({out[key]['seconds']} s)", flush=True)
    return out


def gsm8k_groups(data: Path) -> list:
    items, _ = read_items(data / "gsm8k" / "test.jsonl", "gsm8k")
    test = read_labels(data / "math-skill-labels" / "gsm8k_test.jsonl", "gsm8k_index")
    train = read_labels(data / "math-skill-labels" / "gsm8k_train.jsonl", "gsm8k_index")
    gold = [tuple(test[i]["skills"]) for i in range(len(items))]
    assert all(t["gsm8k_index"] == i for i, t in enumerate(test))
    return [("gsm8k", items, gold, inventory_of(train), [(r["question"], tuple(r["skills"])) for r in train])]


def math_groups(data: Path) -> list:
    items, _ = read_items(data / "math" / "test.jsonl", "math")
    by_id = {it.id: it for it in items}
    test = read_labels(data / "math-skill-labels" / "math_test.jsonl", "math_unique_id")
    train = read_labels(data / "math-skill-labels" / "math_train.jsonl", "math_unique_id")
    train_by: dict[str, list[dict]] = defaultdict(list)
    for r in train:
        train_by[r["subject_dir"]].append(r)
    groups = []
    for subject in sorted({r["subject_dir"] for r in test}):
        rows = [r for r in test if r["subject_dir"] == subject and r["math_unique_id"] in by_id]
        inv = inventory_of(train_by[subject])
        # the few test labels outside the subject's train skills stay as gold (they count as misses)
        groups.append((subject, [replace(by_id[r["math_unique_id"]], skills=()) for r in rows],
                       [tuple(r["skills"]) for r in rows], inv,
                       [(r["question"], tuple(r["skills"])) for r in train_by[subject]]))
    return groups


def table(results: dict) -> str:
    """Markdown: a summary per dataset, then per skill the P / R / F1 of every labeller (the teacher's on its
    subset only)."""
    lines = []
    for dataset, res in results.items():
        lines.append(f"\n### {dataset}\n\n| labeller | n | micro P | micro R | micro F1 | macro F1 |\n"
                     "|---|---|---|---|---|---|")
        for name, r in res.items():
            m = r["micro"]
            w = f" (weight {', '.join(map(str, r['neighbour_weight']))})" if "default" in name else ""
            extra = f", {r['invalid']} invalid" if "invalid" in r else ""
            lines.append(f"| {name}{w}{extra} | {r['n']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                         f"{r['macro_f1']:.3f} |")
        names = [n for n in res if not n.startswith("majority")]
        skills = max((res[n]["per_skill"] for n in names), key=len)
        order = sorted(skills, key=lambda k: -res[names[0]]["per_skill"].get(k, {}).get("support", 0))
        lines.append(f"\nPer skill, P / R / F1 ({dataset}; support on the full test set):\n\n"
                     "| skill | support | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
        for k in order:
            sup = res[names[0]]["per_skill"].get(k, {}).get("support", 0)
            if not sup:
                continue
            cells = []
            for n in names:
                v = res[n]["per_skill"].get(k)
                cells.append("-" if not v or not v["support"] else
                             f"{v['precision']:.2f} / {v['recall']:.2f} / {v['f1']:.2f}")
            lines.append(f"| {k} | {sup} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memoised(fn):
    """The variants embed the same texts again and again; compute each once (the results are identical)."""
    import numpy as np

    seen: dict[tuple[str, str], np.ndarray] = {}

    def embed(texts: list[str], encoder: str = "all-minilm-l6-v2", batch_size: int = 64) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if (encoder, t) not in seen))
        if todo:
            seen.update({(encoder, t): v for t, v in zip(todo, fn(todo, encoder, batch_size))})
        return np.stack([seen[(encoder, t)] for t in texts]) if texts else fn(texts, encoder)

    return embed


def main() -> None:
    import skillgap.label

    skillgap.label.embed = memoised(skillgap.label.embed)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--datasets", default="gsm8k,math")
    ap.add_argument("--teacher", default="smollm2-135m")
    ap.add_argument("--teacher-base-url", default=None)
    ap.add_argument("--teacher-limit", type=int, default=60, help="items the teacher labels per dataset (0: none)")
    ap.add_argument("--labellers", default="embed,teacher", help="which to run: embed, teacher or both")
    ap.add_argument("--output", default="benchmarks/results/labeler_agreement.json")
    ap.add_argument("--table-only", nargs="+", metavar="JSON", help="merge earlier results into one table and stop")
    a = ap.parse_args()
    if a.table_only:
        merged: dict = {}
        for f in a.table_only:
            for ds, res in json.loads(Path(f).read_text()).items():
                merged.setdefault(ds, {}).update({k: v for k, v in res.items() if k not in merged.get(ds, {})})
        Path(a.output).with_suffix(".md").write_text(table(merged) + "\n")
        print(table(merged))
        return
    data = Path(a.data)
    if not data.is_dir():
        raise SystemExit(f"--data {data}: no such folder (the public datasets live in ../shared/data beside the repo).")
    which = a.labellers.split(",")
    teacher = Teacher(ModelConfig(model=a.teacher, base_url=a.teacher_base_url), max_new_tokens=64) \
        if a.teacher_limit and "teacher" in which else None
    results = {}
    for ds in a.datasets.split(","):
        groups = gsm8k_groups(data) if ds == "gsm8k" else math_groups(data)
        results[ds] = run_labellers(ds, groups, teacher, a.teacher_limit, embed="embed" in which)
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
