"""The terminal tables. Numbers are never cut: a long skill name folds onto a second line instead, so a table of
BBH or MMLU skills (40+ characters a name) keeps every before, after, flip count and p-value whole at 100 columns."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from skillgap.verify import verdict_line

CORRECTIONS = {"holm": "Holm-corrected", "bh": "Benjamini-Hochberg", "none": "uncorrected"}


def console() -> Console:
    """A console at least 120 columns wide, so tables stay readable when piped to a file."""
    return Console(width=max(120, Console().width))


def table(title: str, names: tuple[str, ...], caption: str | None = None) -> Table:
    """A table whose first column holds names (folded when long) and the rest numbers (whole, right-aligned)."""
    t = Table(title=title, caption=caption, title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD,
              padding=(0, 0), pad_edge=False)
    t.add_column(names[0], overflow="fold", min_width=8)
    for name in names[1:]:
        t.add_column(name, justify="right", no_wrap=True)
    return t


def pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def p_value(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def unparsed(score: dict[str, Any]) -> str:
    """Format failures beside the accuracy they count against: '3 (5%)', '3 (5%), 2 cut off'."""
    cut = f", {score['truncated']} cut off" if score.get("truncated") else ""
    return f"{score['unparsed']} ({100 * score['unparsed'] / score['n']:.0f}%){cut}" if score["n"] else "0"


def mean_ci(v: list[float | None]) -> str:
    """'42.0 [31-53]' in percent; '-' where nothing was graded."""
    if v[0] is None:
        return "-"
    return f"{100 * v[0]:.1f}" + (f" [{100 * v[1]:.0f}-{100 * v[2]:.0f}]" if v[1] is not None else "")


def _ci(s: dict[str, Any]) -> str:
    return f"{pct(s['ci_low'])}-{pct(s['ci_high']).strip()}"


def _mastery(m: dict[str, Any] | None) -> tuple[str, str]:
    """'12.0 [4-26]' and the verdict, of a skill's joint mastery; '-' where it has none."""
    if not m:
        return "-", ""
    style = {"gap": "bold red", "mastered": "green"}.get(m["verdict"], "")
    verdict = f"[{style}]{m['verdict']}[/{style}]" if style else m["verdict"]
    return f"{100 * m['estimate']:.1f} [{100 * m['ci_low']:.0f}-{100 * m['ci_high']:.0f}]", verdict


def print_profile(p: dict[str, Any], out: Console | None = None) -> None:
    mastery = p.get("mastery") or {}
    t = table(f"run {p['run_id']}", ("skill", "n", "acc %", "95% CI", "alone %", "mastery % [95%]", "verdict",
                                     "missing", "unparsed (rate)"),
              f"{p['model']} on {p['data']}; accuracy counts every item, an unparsed output (no gradable answer, or "
              "cut off at --max-new-tokens) as wrong; mastery: every skill fitted jointly on the graded items "
              "(`skillgap attribute`); missing: STAT's count of failed items")
    for s in sorted(p["skills"], key=lambda s: s["accuracy"]):
        alone = s.get("alone", {})
        t.add_row(s["id"], str(s["n"]), pct(s["accuracy"]), _ci(s),
                  f"{pct(alone['accuracy'])} ({alone['n']})" if alone.get("n") else "-",
                  *_mastery(mastery.get(s["id"])), str(p["missing"].get(s["id"], 0)), unparsed(s))
    for sid in [m for m in p["missing"] if m not in {s["id"] for s in p["skills"]}]:  # named missing, on no item
        t.add_row(sid, "0", "-", "-", "-", "-", "", str(p["missing"][sid]), "-")
    o = p["overall"]
    t.add_section()
    t.add_row("overall", str(o["n"]), pct(o["accuracy"]), _ci(o), "", "", "", str(sum(p["missing"].values())),
              unparsed(o))
    k = table("accuracy by number of composed skills (k)", ("k", "n", "acc %", "95% CI", "unparsed (rate)"))
    for r in p["by_k"]:
        k.add_row(str(r["k"]), str(r["n"]), pct(r["accuracy"]), _ci(r), unparsed(r))
    out = out or console()
    out.print(t)
    out.print(k)
    if p.get("rules"):  # which rule graded how many items (the auto grader reads each reference by its kind)
        out.print("graded by: " + ", ".join(f"{rule} {n}" for rule, n in p["rules"].items()))
    if mastery:
        print_gaps(p.get("gaps", []), p.get("attribution", {}), out)


def print_gaps(gaps: list[str], a: dict[str, Any], out: Console) -> None:
    """The gap list, the confounded groups and the evidence, in one or three lines."""
    out.print("gaps (weakest first): " + (", ".join(gaps) or "none"), highlight=False)
    if a.get("confounded"):
        out.print("confounded (always together in these items, not ranked): "
                  + "; ".join(" + ".join(g) for g in a["confounded"]), highlight=False)
    if (a.get("evidence") or {}).get("thin"):
        out.print(f"[yellow]thin evidence: {a['evidence']['thin']}; targeting falls back to uniform[/yellow]")
    misfit = (a.get("check") or {}).get("misfit")
    if misfit:
        out.print(f"[yellow]the joint model misfits accuracy at k = {', '.join(map(str, misfit))}: the inventory may "
                  "lack a skill those items need[/yellow]")


def print_attribution(res: dict[str, Any], out: Console | None = None) -> None:
    """`skillgap attribute`: each skill's joint mastery with its interval, verdict and evidence, weakest first."""
    ev = res["evidence"]
    t = table(f"skill mastery, fitted jointly: {res['source']}",
              ("skill", "mastery % [95%]", "verdict", "items", "by k", "wrong", "acc %", "LLTM alone %"),
              f"{ev['graded']} graded items ({ev['format_failures']} without a gradable answer, kept out); noisy-AND "
              f"model, slip {100 * res['slip']:.1f}%; gap: upper bound below {100 * res['config']['mastery']:.0f}%; "
              "LLTM: the logistic linear model's estimate for an item of the skill alone")
    for s, m in sorted(res["mastery"].items(), key=lambda kv: (kv[1]["verdict"] == "confounded", kv[1]["estimate"])):
        lltm = f"{100 * m['lltm']:.1f}" if m.get("lltm") is not None else "-"
        t.add_row(s, *_mastery(m), str(m["items"]), " ".join(f"{k}:{n}" for k, n in m["by_k"].items()),
                  str(m["wrong"]), pct(m["accuracy"]), lltm)
    k = table("the model check: accuracy by number of composed skills, observed and predicted",
              ("k", "items", "observed %", "predicted %", ""))
    for r in res["check"].get("by_k", []):
        k.add_row(str(r["k"]), str(r["items"]), pct(r["observed"]), pct(r["predicted"]),
                  "[yellow]misfit[/yellow]" if r["misfit"] else "")
    out = out or console()
    out.print(t)
    out.print(k)
    print_gaps(res["gaps"], res, out)


def print_comparison(before: dict[str, Any], after: dict[str, Any], verdict: dict[str, Any],
                     out: Console | None = None) -> None:
    paired = verdict["overall"]["test"] == "mcnemar-exact"

    def row(d: dict[str, Any]) -> list[str]:
        style = {"improved": "green", "regression": "bold red"}.get(d["flag"], "")
        flag = f"[{style}]{d['flag']}[/{style}]" if style else ""
        cells = [f"{pct(d['before'])} ({d['n_before']})", f"{pct(d['after'])} ({d['n_after']})",
                 f"{d['unparsed_before']}/{d['unparsed_after']}",
                 f"{100 * d['delta']:+.1f}", f"{100 * d['delta_ci_low']:+.1f}, {100 * d['delta_ci_high']:+.1f}"]
        if paired:
            cells.append(f"+{d['gained']}/-{d['lost']}")
        return cells + [p_value(d["p_value"]), p_value(d["p_adjusted"]), flag]

    cols = ("before\n% (n)", "after\n% (n)", "unparsed", "delta\npp", "95% CI", *(["flips"] if paired else []),
            "p", "p\nadj", "")
    test = "exact McNemar on the flipped items (paired)" if paired else "two-proportion z-test (unpaired)"
    t = table(f"{before.get('run_id', 'A')} -> {after.get('run_id', 'B')}", ("skill", *cols),
              f"{test}; flags: adjusted p < {verdict['alpha']} ({CORRECTIONS[verdict['correction']]} over skills, "
              "and over k); accuracy counts every item, an unparsed output (before/after) as wrong")
    for d in sorted(verdict["skills"], key=lambda d: d["delta"]):
        t.add_row(d["id"], *row(d))
    t.add_section()
    t.add_row("overall", *row(verdict["overall"]))
    k = table("by number of composed skills (k)", ("k", *cols))
    for d in verdict["by_k"]:
        k.add_row(str(d["k"]), *row(d))
    out = out or console()
    out.print(t)
    out.print(k)
    out.print(verdict_line(verdict), markup=False, highlight=False, soft_wrap=True)


def print_runs(rows: list[dict[str, Any]], accuracies: list[float | None]) -> None:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("run", "kind", "status", "items", "accuracy", "model", "data", "updated"):
        t.add_column(col, no_wrap=col in ("run", "status", "items"), overflow="fold")
    for r, acc in zip(rows, accuracies):
        t.add_row(r["run_id"], r["kind"], r["status"], f"{r['n_done']}/{r['n_items']}",
                  "-" if acc is None else f"{100 * acc:.1f}%", r["model"], r["data"], r["updated"])
    console().print(t)
