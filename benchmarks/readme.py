"""The benchmark figures of README.md and docs/results.md, generated from the committed results: never typed.

Rewrites each block between `<!-- begin: NAME -->` and `<!-- end: NAME -->` from the JSON in benchmarks/results
(the summaries `--report-only` writes there). tests/test_benchmark_readme.py fails when a file differs from it.

    python benchmarks/readme.py           # rewrite the blocks of README.md and docs/results.md
    python benchmarks/readme.py --check   # exit 1 if a block is not what the results give
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from skillgap.cli import build_parser

sys.path.insert(0, str(Path(__file__).parent))  # targeting_efficiency.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# The blocks live in docs/results.md, so their links to the results climb one folder.
LINK = "../benchmarks/results"
# What the targeting arms are (benchmarks/targeting_efficiency.py SHOWN); kept here so this reads JSON only.
SHOWN = {"stat-syn": "stat-syn (generator)", "skill-it": "Skill-it (4 rounds, prerequisite graph)"}
ALPHA = 0.05
# benchmarks/composition.py's smallest group that gets a verdict (its power rule); kept here so this reads JSON only.
VERDICT_N = 63


def pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def interval(m: list[float]) -> str:
    """A paired difference in points with its interval."""
    return f"{pts(m[0])} [{pts(m[1])}, {pts(m[2])}]"


def ratio(r: dict[str, Any]) -> str:
    if math.isnan(r["ratio"]):
        return "-"
    est = "never" if r["ratio"] == 0 else f"{r['ratio']:.2f}x"
    return f"{est} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"


def targeting(results: dict[str, Any]) -> str:
    """A table of every strategy against uniform at the largest budget, and what it supports."""
    gs = results["g"]
    names = {key: f"G{i}" for i, key in enumerate(gs, 1)}
    lines = ["| G | replay | strategy | G accuracy | against uniform, points | G items up/down | p | Holm | "
             "examples needed, vs uniform | examples on G |", "|---|---|---|---|---|---|---|---|---|---|"]
    cleared, above_one, family, budget = [], [], 0, ""
    for key, res in gs.items():
        sm = res["summary"]
        budget = max(next(iter(sm["table"].values())), key=int)
        for name, row in sm["table"].items():
            s, rp = name.rsplit("@r", 1)
            cell = row[budget]
            if s == "uniform":
                vs = "-"
            else:
                v = sm["versus_uniform"][f"r{rp}"][s]
                c = v["clustered"]
                family = c["family"]
                vs = f"{interval(v['g_macro'])} | {c['items_up']}/{c['items_down']} | {c['p_value']:.2g} | {c['p_holm']:.2g}"
                if c["p_holm"] <= ALPHA:
                    cleared.append(f"`{SHOWN.get(s, s)}` on {names[key]} at replay {rp} ({pts(v['g_macro'][0])} "
                                   f"points, Holm p = {c['p_holm']:.2g})")
            r = sm["ratios"][f"r{rp}"][s]
            if s != "uniform" and r["ci"][0] > 1:
                above_one.append(f"`{SHOWN.get(s, s)}` on {names[key]} at replay {rp}")
            lines.append(f"| {names[key]} | {rp} | {SHOWN.get(s, s)} | {cell['g_macro'][0]:.1%} | "
                         + (vs if s != "uniform" else "- | - | - | -")
                         + f" | {ratio(r) if s != 'uniform' else '-'} | {cell['share_g']:.0%} |")
    g1 = next(iter(gs.values()))["summary"]["table"]
    ceilings = " and ".join(f"{gs[k]['summary']['ideal_ratio']:.2f}x on {names[k]}" for k in gs)
    text = [
        "",
        ", ".join(f"{names[k]} = {{{', '.join(gs[k]['g'])}}}" for k in gs) + f"; {budget} examples; "
        + ", ".join(f"{len({r['seed'] for r in gs[k]['rows']})} seeds on {names[k]}" for k in gs)
        + f"; the same {len(next(iter(gs.values()))['items'])} test items. Points: paired difference in G accuracy [95% bootstrap over seeds and items]; "
        "G items up/down: items whose change summed over the seeds is up or down; p: exact McNemar test over "
        f"the seeds with an item's seeds kept together; Holm: adjusted over the {family} comparisons with "
        "uniform. Examples needed: to reach uniform's G accuracy at the largest budget, on the seed-mean "
        "learning curves (\"never\": not within the budgets).",
        "",
        (f"- Against uniform, after Holm's adjustment at {ALPHA:g}, " + (
            "only " + ", ".join(cleared[:-1]) + (" and " if len(cleared) > 1 else "") + cleared[-1] + " differ"
            + ("s" if len(cleared) == 1 else "") if cleared else "no strategy differs") + "."),
        ("- " + ("No strategy's examples-needed interval lies wholly above 1x" if not above_one else
                 "Only " + ", ".join(above_one) + " need(s) fewer examples with an interval wholly above 1x")
         + f" (ceilings if only G's share mattered: {ceilings})."),
        (f"- `{SHOWN['stat-syn']}` is the suite's generator with no teacher and no filter, and "
         f"`{SHOWN['skill-it']}` reads {g1['skill-it@r0'][budget]['share_g']:.0%} of its examples on G against "
         f"uniform's {g1['uniform@r0'][budget]['share_g']:.0%} ({names[next(iter(gs))]}, replay 0): neither row "
         "is a verdict on STAT-Syn or Skill-it as published."),
    ]
    return "\n".join(lines + text)


def weights(results: dict[str, Any], second: dict[str, Any]) -> str:
    """The library's compositions and removals against the joint adapter, and the second pair's composed items."""
    vs = {(v["model"], v["group"]): v for v in results["summary"]["versus"]["joint"]}
    a, b = results["config"]["skills"].split(",")
    groups = [f"{a} alone", "add_1digit alone", "mul_facts alone"]
    models = ["library ties", "library arrow top-1", "library cat", "library linear", "library dare_linear",
              "joint −0.5A", "joint −2A", "joint ext-sub −2A"]

    def cell(m: str, g: str) -> str:
        v = vs.get((m, g))
        return "-" if v is None else interval(v["delta"]) + (f" (Holm {v['p_holm']:.2g})" if "p_holm" in v else "")

    def d(m: str, g: str) -> str:
        return f"{abs(100 * vs[(m, g)]['delta'][0]):.1f}"

    lines = ["| against the joint adapter | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    lines += [f"| {m} | " + " | ".join(cell(m, g) for g in groups) + " |" for m in models]
    acc = second["summary"]["accuracy"]["joint"]
    a2, b2 = second["config"]["skills"].split(",")
    both = f"{a2}+{b2}"
    family = next(v["family"] for v in vs.values() if "family" in v)
    n = results["groups"]
    text = [
        "",
        f"Library of {a} and {b} adapters, {results['config']['budget']} items each, "
        f"{results['summary']['accuracy']['joint']['seeds']} seeds; test items: "
        + ", ".join(f"{len(n[g])} {g}" for g in groups) + ". Points against one joint LoRA on the union of the same "
        f"examples [95% bootstrap over seeds and items], Holm over the {family} comparisons of the "
        f"[table]({LINK}/weights.md). Ext-Sub's anti-expert here is A's own library adapter, trained "
        "on clean items (the paper's is trained on deficient data); PEFT's `linear` was judged only at weights 1, 1.",
        "",
        f"- `ties` and Arrow stay within {max(float(d('library ties', groups[0])), float(d('library arrow top-1', groups[0]))):.1f} "
        f"points of the joint adapter on {a}; `cat` loses {d('library cat', groups[0])}, and `linear` and "
        f"`dare_linear` at weights 1, 1 lose {d('library linear', groups[0])}.",
        f"- Removal is not selective: negating {a} at λ = 0.5 costs it {d('joint −0.5A', groups[0])} points and "
        f"add_1digit {d('joint −0.5A', groups[1])}; Ext-Sub at λ = 2 costs mul_facts {d('joint ext-sub −2A', groups[2])} "
        f"(negation: {d('joint −2A', groups[2])}) but add_1digit {d('joint ext-sub −2A', groups[1])} and {a} "
        f"{d('joint ext-sub −2A', groups[0])}.",
        f"- On a second pair, {a2} and {b2} ({acc['seeds']} seeds), the joint adapter reaches "
        f"{acc[f'{a2} alone'][0]:.1%} and {acc[f'{b2} alone'][0]:.1%} on them alone and {acc[both][0]:.1%} of the "
        f"{len(second['groups'][both])} items that need both ([table]({LINK}/weights-{a2}-{b2}.md)).",
    ]
    return "\n".join(lines + text)


def main_job(r: dict[str, Any]) -> str:
    """The main job's figures, from benchmarks/main_job.py's record of a fresh-clone run."""
    t, o = r["timings"], r["overall"]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in t.items() if k != "total")
    cpu = "with bf16 units (`--precision auto` trains in bf16)" if r["cpu_bf16"] else "without bf16 units"
    install = f"{r['install_seconds'] / 60:.1f} minutes to install, then " if r["install_seconds"] else ""
    peak = f"; {r['peak_rss_gb']:.1f} GB peak memory" if r["peak_rss_gb"] else ""
    note = f" ({r['note']})" if r["note"] else ""
    ks = "; ".join(f"k = {x['k']}: {100 * x['before']:.0f}% to {100 * x['after']:.0f}% "
                   f"(p = {x['p_value']:.2g}{', significant' if x['significant'] else ''})" for x in r["by_k"])
    return (f"At the last fresh-clone check, on a 2-core CPU {cpu}{note}: {install}`skillgap run` "
            f"{sum(v for k, v in t.items() if k != 'total') / 60:.1f} minutes ({stages}{peak}). "
            f"With seed 0 it takes SmolLM2-135M-Instruct from **{100 * o['before']:.0f}% to {100 * o['after']:.0f}%** "
            f"on {o['n']} test items: {100 * o['delta']:+.1f} pp, paired 95% CI {100 * o['delta_ci_low']:+.1f} to "
            f"{100 * o['delta_ci_high']:+.1f}; {o['gained']} items went wrong → right and {o['lost']} right → wrong "
            f"(exact McNemar p = {o['p_value']:.1g}). By k: {ks}. The last line it prints:\n\n"
            f"    {r['verdict']}\n\n"
            f"([record]({LINK}/main_job.json); figures differ on a CPU {'without' if r['cpu_bf16'] else 'with'} "
            "bf16 units.)")


def headline(r: dict[str, Any]) -> str:
    """The main job's result in one paragraph, for the README."""
    o = r["overall"]
    minutes = sum(v for k, v in r["timings"].items() if k != "total") / 60
    return (f"With seed 0 it takes SmolLM2-135M-Instruct from **{100 * o['before']:.0f}% to {100 * o['after']:.0f}%** "
            f"on {o['n']} test items ({100 * o['delta']:+.1f} pp, paired 95% CI {100 * o['delta_ci_low']:+.1f} to "
            f"{100 * o['delta_ci_high']:+.1f}, exact McNemar p = {o['p_value']:.1g}) in {minutes:.1f} minutes on a "
            "2-core CPU, fresh clone, no GPU ([timings and per-k results](docs/results.md#the-main-job)).")


def sparsity(s: str) -> str:
    """'0.001' as 1e-3, as the paper writes it."""
    return f"1e-{-round(math.log10(float(s)))}"


def localize(arith: dict[str, Any], sst2: dict[str, Any]) -> str:
    """Grafting's gain recovery on `arith` and on SST-2, with the search settings that bound what it tests."""
    steps = sorted({arith["config"]["graft"]["steps"], sst2["config"]["graft"]["steps"]})
    smallest = min(next(iter(arith["skills"].values()))["masks"], key=float)
    recovered = [s["masks"][smallest]["graft"]["gain_recovery"] for s in arith["skills"].values()]
    s = sst2["skills"]["sst2"]
    masks = sorted(s["masks"], key=float)
    grafts = [s["masks"][m]["graft"] for m in masks]
    return (f"Grafting has been run only on merged LoRA deltas with {steps[0]} to {steps[-1]} mask-search steps, "
            "where the paper localizes full fine-tunes with 10 to 100, so it does not yet test the paper's >95% at "
            f"1e-4. In that setting, masks of {sparsity(smallest)} of the decoder blocks keep {min(recovered):.2f} to "
            f"{max(recovered):.2f} of an `arith` fine-tune's gain over the base model (gain recovery, (grafted − base) "
            f"/ (fine-tuned − base), on {arith['config']['localize']['test_limit']} items a skill; "
            f"[table]({LINK}/localize/localize.md)). On SST-2, masks of {' and '.join(sparsity(m) for m in masks)} keep "
            + " and ".join(f"{g['gain_recovery']:+.2f}".replace("-", "−") for g in grafts) + " of it ("
            + " and ".join(f"{g['accuracy']:.1%}" for g in grafts)
            + f" against {s['finetuned']['accuracy']:.1%} fine-tuned and {s['base']['accuracy']:.1%} base, on "
            f"{s['base']['n']} sentences; [table]({LINK}/localize-sst2/localize.md)).")


def composition(r: dict[str, Any]) -> str:
    """What composed training items buy on composed test items, and which groups are too small to say."""
    pairs = [set(p.split("+")) for p in r["config"]["hold_out_pairs"].split(",")]
    unseen = [any(p <= set(it["skills"]) for p in pairs) for it in r["items"]]
    group = lambda k, u: [i for i, it in enumerate(r["items"]) if it["k"] == k and unseen[i] == u]  # noqa: E731
    seen2 = group(2, False)

    def gain(regime: str) -> float:
        """Mean over seeds of the regime's accuracy on the k = 2 seen items, less k = 1 training's."""
        acc = lambda bits: sum(bits[i] == "1" for i in seen2) / len(seen2)  # noqa: E731
        runs, base = r["runs"][regime], r["runs"]["1"]
        return 100 * sum(acc(runs[s]["correct"]) - acc(base[s]["correct"]) for s in base) / len(base)

    gains = sorted({f"{gain(reg):.1f}" for reg in r["runs"] if reg != "1"})
    small = [k for k in (3, 4) if len(group(k, False)) + len(group(k, True)) < VERDICT_N]
    return (f"`benchmarks/composition.py`, {len(r['runs']['1'])} seeds, {r['config']['budget']} examples, "
            f"{len(r['items'])} test items ([table]({LINK}/composition.md), with the intervals). Training the "
            "embedded model on k ≤ 2 or k ≤ 3 `arith` items instead of k = 1 raises accuracy on the "
            f"{len(seen2)} k = 2 items that compose no held-out pair by {' and '.join(gains)} points (mean over "
            f"the seeds). Compared within each k, every unseen group of that run, and every group at k = "
            f"{' and '.join(map(str, small))}, is smaller than the {VERDICT_N} items a verdict needs: "
            + ", ".join(str(len(group(k, True))) for k in (2, 3)) + f" and {len(group(4, True))} items compose one "
            f"of the {len(pairs)} held-out pairs at k = 2, 3 and 4, and k = {' and '.join(map(str, small))} have "
            + " and ".join(str(len(group(k, False)) + len(group(k, True))) for k in small) + " items in all.")


def labels(hf: dict[str, Any], llamacpp: dict[str, Any]) -> str:
    """How far the labellers agree with the released GSM8K and MATH labels, and the embedded model as a teacher."""
    f1 = lambda data, arm: f"{hf[data][arm]['micro']['f1']:.1%}"  # noqa: E731
    train, test, names = "embed (default, train neighbours)", "embed (default, test neighbours, leave-one-out)", \
        "embed (descriptions only)"
    teacher = lambda r: next(v for k, v in r.items() if k.startswith("teacher"))  # noqa: E731
    n = sum(teacher(hf[d])["n"] for d in hf)
    valid = n - sum(teacher(hf[d])["invalid"] for d in hf)
    served = sum(teacher(llamacpp[d])["n"] for d in llamacpp)
    served_invalid = sum(teacher(llamacpp[d])["invalid"] for d in llamacpp)
    return (f"The default embed labeller agrees with the released labels on {f1('gsm8k', train)} of the "
            f"{hf['gsm8k'][train]['n']} GSM8K test questions (micro F1) with the train labels as neighbours, and on "
            f"{f1('gsm8k', test)} with the test labels themselves (each item's own hidden); on the {hf['math'][train]['n']} "
            f"MATH test problems, {f1('math', train)} and {f1('math', test)}. Skill names alone are strong evidence on "
            f"MATH ({f1('math', names)}) and weak on GSM8K ({f1('gsm8k', names)}). The embedded SmolLM2-135M is not a "
            f"usable teacher: through transformers {valid} of {n} items got a valid answer in three tries; served by "
            f"llama.cpp with "
            f"the schema enforced, {served - served_invalid} of {served} replies were valid, and nearly constant "
            f"([table]({LINK}/labeler_agreement.md)).")


def throughput(r: dict[str, Any]) -> str:
    """vLLM against transformers, and a merged adapter against LoRARequest, from profile_throughput.py's rows."""
    rows = r["rows"]
    shown = {"hf now (batch 16)": "`hf`", "vllm + adapter (LoRARequest)": "`LoRARequest`",
             "hf + adapter (PEFT, merged)": "hf + PEFT"}

    def versus(a: str, b: str) -> str:
        x, y = rows[a], rows[b]
        return (f"{x['items_per_s'] / y['items_per_s']:.1f}x {shown[b]} ({x['items_per_s']:.2f} against "
                f"{y['items_per_s']:.2f} items/s), with the text of {shown[x['reference']]} on "
                f"{round(x['agreement'] * x['items'])} of {x['items']} items")

    return (f"On {r['cpu_count']} cores the `vllm` backend at fp32 runs "
            f"{versus('skillgap vllm float32', 'hf now (batch 16)')}; an adapter served merged runs "
            f"{versus('vllm + adapter (merged)', 'vllm + adapter (LoRARequest)')}, hence `--adapter-mode auto` "
            f"merges on a CPU ([table]({LINK}/profile_throughput-issue12.md)).")


def diagnosis(targeting: dict[str, Any], planted: dict[str, Any]) -> str:
    """How often each diagnosis names G (issue 40): on the benchmark's students (their train-item diagnoses, kept
    from seed 3 on, and every student's test outcomes), and on the planted-gap simulations."""
    import targeting_efficiency as te

    cols = [("count, top |G|", lambda d: d), ("accuracy, top |G|", lambda d: d["by_accuracy"]),
            ("joint, top |G|", lambda d: d["by_joint"]), ("joint gaps", lambda d: d["gaps"]["joint"])]
    lines = ["| G | diagnosed on | students | " + " | ".join(c for c, _ in cols) + " | G's share of the joint budget |",
             "|---|---|---|" + "---|" * len(cols) + "---|"]
    for n, (key, res) in enumerate(targeting.get("g", {}).items(), start=1):
        sources = [("train items (seeds 3+)", {k: d for k, d in (res.get("diagnosis") or {}).items() if "by_joint" in d}),
                   ("test outcomes (every student)", te.outcome_diagnoses(res))]
        for where, found in sources:
            if not found:
                continue
            cells = []
            for _, get in cols:
                prec = [get(d)["precision"] for d in found.values()]
                exact = sum(get(d)["precision"] == 1.0 and get(d)["recall"] == 1.0 for d in found.values())
                cells.append(f"{sum(prec) / len(prec):.2f} ({exact}/{len(prec)} exact)")
            share = sum(d["joint_share_g"] for d in found.values()) / len(found)
            lines.append(f"| G{n} | {where} | {', '.join(found)} | " + " | ".join(cells) + f" | {share:.0%} |")
    t = planted["table"]
    stat = [f"{res['summary']['table']['stat-sel@r0'][str(max(int(b) for b in res['summary']['table']['stat-sel@r0']))]['share_g']:.0%} "
            f"on G{n}" for n, res in enumerate(targeting.get("g", {}).values(), start=1)
            if "stat-sel@r0" in res.get("summary", {}).get("table", {})]
    lines += ["", "Mean precision against G, and in brackets the students whose list is exactly G (precision and "
              "recall 1). The top-|G| columns rank skills; `joint gaps` is the list `--diagnosis joint` hands to "
              "targeting, whose budget share for G is the last column (of the examples STAT's `stat-sel` chose, "
              f"{' and '.join(stat)} touched G). On planted gaps "
              f"({len(planted['config']['seeds'].split(','))} seeds each), the joint gap list's precision / recall: "
              + "; ".join(f"{name} {t[name]['joint gaps']['precision']:.2f} / {t[name]['joint gaps']['recall']:.2f} "
                          f"(counts' top |G| {t[name]['count, top |G|']['precision']:.2f})" for name in t)
              + " ([planted table](../benchmarks/results/attribution_planted.md))."]
    return "\n".join(lines)


def commands() -> str:
    """One line per subcommand, from the parser's own help, so the README's list cannot drift from the CLI."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return "\n".join(f"- `skillgap {a.dest}`: {a.help}" for a in sub._choices_actions)


def files() -> dict[Path, dict[str, str]]:
    """Each file with generated blocks, and what its blocks say now."""
    load = lambda name: json.loads((RESULTS / name).read_text())  # noqa: E731
    job = load("main_job.json")
    return {
        ROOT / "README.md": {"headline": headline(job), "commands": commands()},
        ROOT / "docs" / "results.md": {
            "main-job": main_job(job), "targeting": targeting(load("targeting_efficiency.json")),
            "diagnosis": diagnosis(load("targeting_efficiency.json"), load("attribution_planted.json")),
            "weights": weights(load("weights.json"), load("weights-add_multi-fraction_of.json")),
            "localize": localize(load("localize/localize.json"), load("localize-sst2/localize.json")),
            "throughput": throughput(load("profile_throughput-issue12.json")),
            "composition": composition(load("composition.json")),
            "labels": labels(load("labeler_agreement.json"), load("labeler_agreement_llamacpp.json"))},
    }


def rewrite(text: str, new: dict[str, str], where: str = "README.md") -> str:
    """`text` (the file `where`) with each named block's body replaced; an error if a block's markers are missing."""
    for block, body in new.items():
        pattern = re.compile(rf"(<!-- begin: {block} -->\n).*?(<!-- end: {block} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{where}: no '<!-- begin: {block} -->' ... '<!-- end: {block} -->' block")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a block differs from what the results give")
    a = p.parse_args(argv)
    for path, new in files().items():
        name = str(path.relative_to(ROOT))
        old = path.read_text()
        text = rewrite(old, new, name)
        if a.check and text != old:
            sys.exit(f"{name}: a generated block differs from the results; run python benchmarks/readme.py")
        if not a.check:
            path.write_text(text)


if __name__ == "__main__":
    main()
