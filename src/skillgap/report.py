"""Report: the last stage of `skillgap run`, one JSON file and one self-contained HTML page.

The page must open anywhere, offline and forever, so plots are inline SVG from matplotlib and the
CSS is embedded: no CDN, no fonts, no scripts. matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

# Colours shared by the plots and the CSS, so a red bar and a red table row mean the same thing.
C_BEFORE = "#9aa5b1"
C_AFTER = "#2f6fb0"
C_IMPROVED = "#2e8540"
C_REGRESSION = "#c62828"
C_TRAIN = "#444444"

PAGE_W_IN = 10.6  # inches: 10.6 in * 72 pt * 4/3 px ~= 1020 px, the content width of the page
SVG_RC = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}

_SVG_START = re.compile(r"<svg\b")
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


# ---------------------------------------------------------------- public API


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write out_dir/report.json and out_dir/report.html (each atomically); return the HTML path.

    The JSON goes first, so a plotting failure still leaves the numbers on disk.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # default=str: a stray Path in the config must not lose a run at its very last step.
    _write_atomic(out / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    html_path = out / "report.html"
    _write_atomic(html_path, render_html(report))
    return html_path


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page: embedded CSS, inline SVG plots, everything escaped."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, pp=_pp, num=_num, pval=_pval)
    return env.from_string(_TEMPLATE).render(**_context(report))


# ---------------------------------------------------------------- view model


def _context(report: dict[str, Any]) -> dict[str, Any]:
    before = report.get("before") or {}
    after = report.get("after") or {}
    deltas = report.get("deltas") or {}
    mixture = report.get("mixture") or {}
    training = report.get("training") or {}
    skills = _skill_rows(report)
    by_k = _k_rows(before, after, deltas)
    regressions = [r for r in skills if r["flag"] == "regression"]
    return {
        "r": report,
        "title": f"skillgap · {report.get('model', '?')} · {report.get('suite', '?')}",
        "overall": _overall(before, after, deltas.get("overall") or {}),
        "skills": skills,
        "n_improved": sum(r["flag"] == "improved" for r in skills),
        "regressions": regressions,
        "verdict": _verdict(report),
        "by_k": by_k,
        "mixture": mixture,
        "mixture_by_skill": _mixture_rows(mixture, skills),
        "mixture_by_k": sorted(((str(k), v) for k, v in (mixture.get("by_k") or {}).items()), key=_k_sort),
        "training": training,
        "timings": report.get("timings") or {},
        "diagnosis": report.get("diagnosis") or {},
        "config_json": json.dumps(report.get("config") or {}, indent=2, default=str, sort_keys=True),
        "skills_svg": _markup(_skills_svg(skills)),
        "by_k_svg": _markup(_by_k_svg(by_k)),
        "training_svg": _markup(_training_svg(training)),
        "mixture_svg": _markup(_mixture_svg(mixture, skills)),
    }


def _verdict(report: dict[str, Any]) -> str | None:
    """The one-line verdict (overall, per k, then per skill), as `skillgap run` prints it last."""
    from skillgap.verify import verdict_line

    deltas = report.get("deltas") or {}
    if "significant" not in (deltas.get("overall") or {}):
        return None
    flags = {k: report.get(k) or [] for k in ("improved", "regressions")}
    return verdict_line(deltas | flags)


def _score(d: dict[str, Any] | None) -> dict[str, Any] | None:
    """A profile score, or None when there is nothing measured (absent, or zero graded items)."""
    if not d or not d.get("n"):
        return None
    return d


def _overall(before: dict[str, Any], after: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    return {"before": _score(before.get("overall")), "after": _score(after.get("overall")),
            "before_unparsed": (before.get("overall") or {}).get("unparsed", 0),
            "after_unparsed": (after.get("overall") or {}).get("unparsed", 0),
            "delta": delta or None}


def _skill_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per skill seen anywhere (deltas first, then before, then after), in a stable order."""
    before = {s["id"]: s for s in (report.get("before") or {}).get("skills") or []}
    after = {s["id"]: s for s in (report.get("after") or {}).get("skills") or []}
    deltas = {d["id"]: d for d in (report.get("deltas") or {}).get("skills") or []}
    regressed, improved = set(report.get("regressions") or []), set(report.get("improved") or [])
    ids = list(dict.fromkeys([*deltas, *before, *after]))
    rows = []
    for sid in ids:
        b, a, d = before.get(sid), after.get(sid), deltas.get(sid)
        flag = (d or {}).get("flag") or ""
        if sid in regressed:
            flag = "regression"
        elif sid in improved and flag != "regression":
            flag = "improved"
        name = next((x["name"] for x in (d, a, b) if x and x.get("name")), sid)
        rows.append({"id": sid, "name": name, "before": _score(b), "after": _score(a), "delta": d, "flag": flag,
                     "n_before": (b or {}).get("n", 0), "n_after": (a or {}).get("n", 0),
                     "unparsed_before": (b or {}).get("unparsed", 0), "unparsed_after": (a or {}).get("unparsed", 0)})
    return rows


def _k_rows(before: dict[str, Any], after: dict[str, Any], deltas: dict[str, Any]) -> list[dict[str, Any]]:
    b = {int(x["k"]): x for x in before.get("by_k") or []}
    a = {int(x["k"]): x for x in after.get("by_k") or []}
    d = {int(x["k"]): x for x in deltas.get("by_k") or []}
    return [{"k": k, "before": _score(b.get(k)), "after": _score(a.get(k)), "delta": d.get(k),
             "n_before": (b.get(k) or {}).get("n", 0), "n_after": (a.get(k) or {}).get("n", 0),
             "unparsed_before": (b.get(k) or {}).get("unparsed", 0), "unparsed_after": (a.get(k) or {}).get("unparsed", 0)}
            for k in sorted({*b, *a, *d})]


def _mixture_rows(mixture: dict[str, Any], skills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {r["id"]: r["name"] for r in skills}
    weights = mixture.get("weights") or {}
    return [{"id": sid, "name": names.get(sid, sid), "n": n, "weight": weights.get(sid)}
            for sid, n in (mixture.get("by_skill") or {}).items()]


def _k_sort(kv: tuple[str, Any]) -> tuple[int, str]:
    return (int(kv[0]), "") if kv[0].lstrip("-").isdigit() else (1 << 30, kv[0])


# ---------------------------------------------------------------- formatting (jinja filters)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _pct(x: Any, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%" if _finite(x) else "—"


def _pp(x: Any) -> str:
    """A difference of fractions in percentage points, always signed."""
    return f"{100 * x:+.1f}" if _finite(x) else "—"


def _num(x: Any, digits: int = 0) -> str:
    if not _finite(x):
        return "—"
    return f"{x:,.{digits}f}" if digits or isinstance(x, float) and not x.is_integer() else f"{int(x):,}"


def _pval(x: Any) -> str:
    if not _finite(x):
        return "—"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


# ---------------------------------------------------------------- plots


def _tex_safe(s: str) -> str:
    """matplotlib reads text between two '$' as mathtext; skill names are plain text."""
    return str(s).replace("$", r"\$")


def _figure(w: float, h: float) -> Any:
    """A figure outside pyplot's registry: nothing global to leak, nothing to forget to close."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _to_svg(fig: Any, name: str) -> str:
    """Inline SVG text: no XML prolog/doctype (illegal inside HTML), no RDF metadata (it holds URLs)."""
    import matplotlib

    buf = io.StringIO()
    try:
        # A fixed salt per plot: ids are reproducible and never collide between the plots of one page.
        with matplotlib.rc_context(SVG_RC | {"svg.hashsalt": f"skillgap-{name}"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        fig.clear()
    text = buf.getvalue()
    start = _SVG_START.search(text)
    text = text[start.start():] if start else text
    text = _SVG_METADATA.sub("", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{name} plot" ', 1).strip()


def _markup(svg: str | None) -> Markup | None:
    return Markup(svg) if svg else None  # matplotlib's SVG writer escapes all text it embeds


def _err(score: dict[str, Any]) -> tuple[float, float]:
    acc = score["accuracy"]
    return max(0.0, acc - score["ci_low"]) * 100, max(0.0, score["ci_high"] - acc) * 100


def _skills_svg(rows: list[dict[str, Any]]) -> str | None:
    """Grouped horizontal bars, before vs after, with 95% CIs; regressions in red and marked."""
    if not any(r["before"] or r["after"] for r in rows):
        return None
    n = len(rows)
    fig = _figure(PAGE_W_IN, max(2.2, 0.42 * n + 1.0))
    ax = fig.add_subplot()
    h = 0.38
    ebar = {"ecolor": "#333333", "capsize": 2.5, "elinewidth": 0.9}
    colour = {"regression": C_REGRESSION, "improved": C_IMPROVED}
    for i, r in enumerate(rows):
        y = n - 1 - i  # first skill on top
        if r["before"]:
            ax.barh(y + h / 2, r["before"]["accuracy"] * 100, h, color=C_BEFORE, xerr=[[e] for e in _err(r["before"])],
                    error_kw=ebar)
        else:
            ax.text(1, y + h / 2, "not measured", va="center", fontsize=7, color="#777777")
        if r["after"]:
            ax.barh(y - h / 2, r["after"]["accuracy"] * 100, h, color=colour.get(r["flag"], C_AFTER),
                    xerr=[[e] for e in _err(r["after"])], error_kw=ebar)
        else:
            ax.text(1, y - h / 2, "not measured", va="center", fontsize=7, color="#777777")
    ax.set_yticks(range(n), [_tex_safe(("▼ " if r["flag"] == "regression" else "") + r["name"])
                             for r in reversed(rows)])
    for tick, r in zip(ax.get_yticklabels(), reversed(rows)):
        if r["flag"] in colour:
            tick.set_color(colour[r["flag"]])
            tick.set_fontweight("bold")
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("accuracy (%), 95% CI")
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    from matplotlib.patches import Patch

    handles = [Patch(color=C_BEFORE, label="before"), Patch(color=C_AFTER, label="after")]
    if any(r["flag"] == "improved" for r in rows):
        handles.append(Patch(color=C_IMPROVED, label="after (improved)"))
    if any(r["flag"] == "regression" for r in rows):
        handles.append(Patch(color=C_REGRESSION, label="after (▼ regression)"))
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), frameon=False)
    return _to_svg(fig, "skills")


def _by_k_svg(rows: list[dict[str, Any]]) -> str | None:
    """Accuracy against the number of composed skills, before and after, with 95% CI bands."""
    if not any(r["before"] or r["after"] for r in rows):
        return None
    fig = _figure(PAGE_W_IN * 0.52, 3.0)
    ax = fig.add_subplot()
    for side, colour in (("before", C_BEFORE), ("after", C_AFTER)):
        pts = [(r["k"], r[side]) for r in rows if r[side]]
        if not pts:
            continue
        ks = [k for k, _ in pts]
        acc = [s["accuracy"] * 100 for _, s in pts]
        ax.fill_between(ks, [s["ci_low"] * 100 for _, s in pts], [s["ci_high"] * 100 for _, s in pts],
                        color=colour, alpha=0.18, linewidth=0)
        ax.errorbar(ks, acc, yerr=list(zip(*(_err(s) for _, s in pts))), color=colour, marker="o", markersize=4,
                    capsize=3, linewidth=1.6, label=side)
    _k_axis(ax, [r["k"] for r in rows], "k (skills composed per item)", "accuracy (%), 95% CI")
    return _to_svg(fig, "by-k")


def _k_axis(ax: Any, ks: list[int], xlabel: str, ylabel: str) -> None:
    """The axes of a percentage against k: one tick per k, 0-100, light horizontal grid."""
    ax.set_xticks(ks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.legend(frameon=False)


def _training_svg(training: dict[str, Any]) -> str | None:
    """Train loss and per-skill validation loss against the optimiser step."""
    log = [e for e in training.get("log") or [] if _finite(e.get("loss")) and _finite(e.get("step"))]
    val = [e for e in training.get("val_loss") or [] if _finite(e.get("loss")) and _finite(e.get("step"))]
    if not log and not val:
        return None
    fig = _figure(PAGE_W_IN, 3.0)
    ax_train, ax_val = fig.subplots(1, 2)
    if log:
        ax_train.plot([e["step"] for e in log], [e["loss"] for e in log], color=C_TRAIN, linewidth=1.3)
    else:
        ax_train.text(0.5, 0.5, "no train-loss log", ha="center", va="center", transform=ax_train.transAxes)
    ax_train.set_title("train loss", fontsize=9)
    by_skill: dict[str, list[tuple[float, float]]] = {}
    for e in val:
        by_skill.setdefault(str(e.get("skill", "all")), []).append((e["step"], e["loss"]))
    for skill, pts in by_skill.items():
        pts.sort()
        ax_val.plot(*zip(*pts), marker="o", markersize=2.5, linewidth=1.2, label=_tex_safe(skill))
    if by_skill:
        ax_val.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      fontsize=7, frameon=False, ncol=1 + len(by_skill) // 12)
    else:
        ax_val.text(0.5, 0.5, "no validation loss logged", ha="center", va="center", transform=ax_val.transAxes)
    ax_val.set_title("validation loss by skill", fontsize=9)
    for ax in (ax_train, ax_val):
        ax.set_xlabel("step")
        ax.grid(color="#eeeeee", linewidth=0.6)
    return _to_svg(fig, "training")


def _mixture_svg(mixture: dict[str, Any], skills: list[dict[str, Any]]) -> str | None:
    """Training examples per skill, as the target stage actually allotted them."""
    rows = _mixture_rows(mixture, skills)
    if not rows:
        return None
    flags = {r["id"]: r["flag"] for r in skills}
    fig = _figure(PAGE_W_IN * 0.6, max(1.8, 0.3 * len(rows) + 0.9))
    ax = fig.add_subplot()
    ys = range(len(rows) - 1, -1, -1)
    ax.barh(list(ys), [r["n"] for r in rows], 0.6,
            color=[C_REGRESSION if flags.get(r["id"]) == "regression" else C_AFTER for r in rows])
    for y, r in zip(ys, rows):
        ax.text(r["n"], y, f" {r['n']:,}", va="center", fontsize=7)
    ax.set_yticks(list(ys), [_tex_safe(r["name"]) for r in rows])
    ax.set_xlabel("training examples")
    ax.margins(x=0.12)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    return _to_svg(fig, "mixture")


# ---------------------------------------------------------------- files


def _write_atomic(path: Path, text: str) -> None:
    """Write next to the target and rename: a reader never sees half a file (same as recipes.profile.write_json)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------- template

_CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--zebra:#f6f8fa;--red:""" + C_REGRESSION + """;
--green:""" + C_IMPROVED + """;--blue:""" + C_AFTER + """}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:#fff}
main{max-width:1100px;margin:0 auto;padding:24px 40px 40px}
header h1{font-size:22px;margin:0 0 6px}
header dl{display:flex;flex-wrap:wrap;gap:4px 22px;margin:0;color:var(--muted)}
header dt{display:inline;font-weight:600}header dd{display:inline;margin:0 0 0 4px;color:var(--fg)}
.headline{font-size:18px;margin:18px 0 6px;padding:12px 16px;background:var(--zebra);border-radius:6px}
section{margin-top:30px}
h2{font-size:17px;border-bottom:1px solid var(--line);padding-bottom:4px;margin:0 0 12px}
h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{padding:4px 9px;text-align:right;white-space:nowrap;vertical-align:top}
td.delta .ci,td.acc .ci,td .unparsed{display:block}
th{border-bottom:2px solid var(--line);font-weight:600}
th:first-child,td:first-child{text-align:left}
tbody tr:nth-child(even){background:var(--zebra)}
tr.regression td{color:var(--red)}tr.regression td:first-child{border-left:3px solid var(--red)}
tr.improved td.flag,tr.improved td.delta{color:var(--green)}
.flag{font-weight:600}.ci,.muted,.unparsed{color:var(--muted);font-size:12px}
.up{color:var(--green)}.down{color:var(--red)}
figure.plot{margin:8px 0}figure.plot svg{width:100%;height:auto;display:block}
figure.side{flex:0 1 560px}
.cols{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start}
ul.regressions li{color:var(--red)}
.empty{color:var(--muted);font-style:italic}
footer{margin-top:40px;border-top:1px solid var(--line);padding-top:10px;color:var(--muted);font-size:12px}
pre{background:var(--zebra);padding:10px;overflow:auto;font-size:12px;max-height:480px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
"""

_TEMPLATE = """<!DOCTYPE html>
{% macro score(s) %}{% if s %}{{ s.accuracy | pct }}{% else %}—{% endif %}{% endmacro %}
{% macro ci(s) %}{% if s %}<span class="ci">[{{ s.ci_low | pct }}, {{ s.ci_high | pct }}]</span>{% endif %}{% endmacro %}
{% macro n(count, unparsed) %}{{ count | num }}{% if unparsed %} <span class="unparsed" \
title="outputs with no gradable answer (format failures): counted in n, as wrong">{{ unparsed | num }} unparsed\
{% if count %} ({{ (unparsed / count) | pct }}){% endif %}</span>{% endif %}{% endmacro %}
{% macro rate(count, total) %}{{ count | num }}{% if total %} ({{ (count / total) | pct }}){% endif %}{% endmacro %}
{% macro flips(d) %}{% if d and d.gained is defined %}<span class="up">+{{ d.gained }}</span> / \
<span class="down">&minus;{{ d.lost }}</span>{% else %}—{% endif %}{% endmacro %}
{% macro signed(d) %}{% if d is number %}<span class="{{ 'up' if d > 0 else 'down' if d < 0 else '' }}">\
{{ d | pp }}</span>{% else %}—{% endif %}{% endmacro %}
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>""" + _CSS + """</style>
</head>
<body>
<main>
<header>
<h1>skillgap report</h1>
<dl>
<div><dt>model</dt><dd><code>{{ r.model | default('—', true) }}</code></dd></div>
<div><dt>suite</dt><dd>{{ r.suite | default('—', true) }}</dd></div>
<div><dt>strategy</dt><dd>{{ r.strategy | default('—', true) }}</dd></div>
<div><dt>budget</dt><dd>{{ r.budget | num }}</dd></div>
<div><dt>seed</dt><dd>{{ '—' if r.get('seed') is none else r.seed }}</dd></div>
<div><dt>data cost</dt><dd>{{ mixture.n_examples | num }} examples\
{% if training.train_tokens is defined %}, {{ training.train_tokens | num }} train tokens{% endif %}</dd></div>
</dl>
<p class="headline" id="headline">overall
{% if overall.before %}<b>{{ overall.before.accuracy | pct }}</b> {{ ci(overall.before) }}{% else %}—{% endif %}
 &rarr; {% if overall.after %}<b>{{ overall.after.accuracy | pct }}</b> {{ ci(overall.after) }}{% else %}—{% endif %}
{% if overall.delta %}
&nbsp;<b>{{ signed(overall.delta.delta) }} pp</b>
<span class="ci">[{{ overall.delta.delta_ci_low | pp }}, {{ overall.delta.delta_ci_high | pp }}], \
p {{ overall.delta.p_value | pval }}{% if overall.delta.gained is defined %} (exact McNemar: \
{{ overall.delta.gained }} wrong &rarr; right, {{ overall.delta.lost }} right &rarr; wrong){% endif %}</span>
{% endif %}
</p>
</header>

<section id="summary">
<h2>Summary</h2>
<table>
<thead><tr><th></th><th>n</th><th>unparsed (format failures)</th><th>accuracy</th><th>95% CI</th></tr></thead>
<tbody>
<tr><td>before</td><td>{{ overall.before.n if overall.before else 0 }}</td>
<td class="n-unparsed">{{ rate(overall.before_unparsed, overall.before.n if overall.before else 0) }}</td>
<td>{{ score(overall.before) }}</td><td>{{ ci(overall.before) }}</td></tr>
<tr><td>after</td><td>{{ overall.after.n if overall.after else 0 }}</td>
<td class="n-unparsed">{{ rate(overall.after_unparsed, overall.after.n if overall.after else 0) }}</td>
<td>{{ score(overall.after) }}</td><td>{{ ci(overall.after) }}</td></tr>
</tbody>
</table>
{% if verdict %}<p id="verdict"><b>Verdict:</b> {{ verdict }}</p>{% endif %}
<p>per skill: <span class="up"><b id="n-improved">{{ n_improved }}</b> improved</span> ·
<span class="{{ 'down' if regressions else '' }}"><b id="n-regressions">{{ regressions | length }}</b> \
regression{{ '' if regressions | length == 1 else 's' }}</span> · {{ skills | length }} skills measured</p>
<p class="muted" id="method">Accuracy counts every item (an unparsed output is wrong). \
{% if overall.delta and overall.delta.test == 'mcnemar-exact' %}Before and after are the same items: \
p-values are exact McNemar tests on the items that flipped, intervals are Newcombe's paired score intervals\
{% else %}Unpaired: two-proportion z-tests, Newcombe's hybrid score intervals{% endif %}; \
skill flags at adjusted p &lt; {{ r.deltas.alpha | default(0.05) }} \
({{ {'holm': 'Holm', 'bh': 'Benjamini-Hochberg', 'none': 'uncorrected'}[r.deltas.correction | default('holm')] }}).</p>
{% if diagnosis %}<p class="muted">targeted from diagnosis run <code>{{ diagnosis.run_id | default('?') }}</code>\
{% if diagnosis.overall %} (overall {{ diagnosis.overall.accuracy | pct }}, n = {{ diagnosis.overall.n | num }}){% endif %}</p>{% endif %}
</section>

<section id="skills">
<h2>Skills</h2>
{% if skills_svg %}<figure class="plot">{{ skills_svg }}</figure>{% endif %}
{% if skills %}
<table>
<thead><tr><th>skill</th><th>n before</th><th>before % (95% CI)</th><th>n after</th><th>after % (95% CI)</th>
<th>delta (pp)</th><th>flips</th><th>p-value</th><th>adjusted</th><th>flag</th></tr></thead>
<tbody>
{% for s in skills %}
<tr data-skill="{{ s.id }}"{% if s.flag %} class="{{ s.flag }}"{% endif %}>
<td title="{{ s.id }}">{{ s.name }}</td>
<td>{{ n(s.n_before, s.unparsed_before) }}</td><td class="acc">{{ score(s.before) }} {{ ci(s.before) }}</td>
<td>{{ n(s.n_after, s.unparsed_after) }}</td><td class="acc">{{ score(s.after) }} {{ ci(s.after) }}</td>
<td class="delta">{% if s.delta %}{{ signed(s.delta.delta) }} <span class="ci">[{{ s.delta.delta_ci_low | pp }}, \
{{ s.delta.delta_ci_high | pp }}]</span>{% else %}—{% endif %}</td>
<td class="flips">{{ flips(s.delta) }}</td>
<td>{{ s.delta.p_value | pval if s.delta else '—' }}</td>
<td>{{ s.delta.p_adjusted | pval if s.delta and s.delta.p_adjusted is defined else '—' }}</td>
<td class="flag">{{ s.flag }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}<p class="empty">No skills measured.</p>{% endif %}
</section>

<section id="by-k">
<h2>Accuracy by k (skills composed per item)</h2>
{% if by_k %}
<div class="cols">
{% if by_k_svg %}<figure class="plot side">{{ by_k_svg }}</figure>{% endif %}
<table>
<thead><tr><th>k</th><th>n before</th><th>before %</th><th>n after</th><th>after %</th><th>delta (pp)</th>\
<th>flips</th><th>p-value</th></tr></thead>
<tbody>
{% for row in by_k %}
<tr data-k="{{ row.k }}"><td>{{ row.k }}</td><td>{{ n(row.n_before, row.unparsed_before) }}</td>\
<td>{{ score(row.before) }}</td>
<td>{{ n(row.n_after, row.unparsed_after) }}</td><td>{{ score(row.after) }}</td>
<td>{% if row.delta %}{{ signed(row.delta.delta) }}{% else %}—{% endif %}</td>
<td class="flips">{{ flips(row.delta) }}</td><td>{{ row.delta.p_value | pval if row.delta else '—' }}</td></tr>
{% endfor %}
</tbody>
</table>
</div>
{% else %}<p class="empty">No composition data.</p>{% endif %}
</section>

<section id="training">
<h2>Training</h2>
{% if training_svg %}
<p>{{ training.method | default('?') }} · {{ training.steps | num }} steps · {{ training.examples_seen | num }} examples seen
· {{ training.train_tokens | num }} tokens · {{ training.seconds | num(1) }} s</p>
<figure class="plot">{{ training_svg }}</figure>
{% else %}<p class="empty">No training in this run.</p>{% endif %}
</section>

<section id="mixture">
<h2>Training mixture</h2>
{% if mixture %}
<p>strategy <b>{{ mixture.strategy | default(r.strategy, true) | default('—', true) }}</b> ·
{{ mixture.n_examples | num }} examples (budget {{ mixture.budget | num }})
{% if mixture.order %} · order {{ mixture.order }}{% endif %}</p>
<div class="cols">
{% if mixture_svg %}<figure class="plot side">{{ mixture_svg }}</figure>{% endif %}
<div>
{% if mixture_by_skill %}
<table><thead><tr><th>skill</th><th>examples</th><th>weight</th></tr></thead><tbody>
{% for m in mixture_by_skill %}
<tr data-skill="{{ m.id }}"><td>{{ m.name }}</td><td>{{ m.n | num }}</td><td>{{ m.weight | num(3) }}</td></tr>
{% endfor %}
</tbody></table>
{% endif %}
{% if mixture_by_k %}
<table><thead><tr><th>k</th><th>examples</th></tr></thead><tbody>
{% for k, count in mixture_by_k %}<tr><td>{{ k }}</td><td>{{ count | num }}</td></tr>{% endfor %}
</tbody></table>
{% endif %}
</div>
</div>
{% else %}<p class="empty">No training mixture in this run.</p>{% endif %}
</section>

<section id="regressions">
<h2>Regressions</h2>
{% if regressions %}
<ul class="regressions">
{% for s in regressions %}
<li data-skill="{{ s.id }}"><b>{{ s.name }}</b> <code>{{ s.id }}</code>: {{ score(s.before) }} → {{ score(s.after) }}
{% if s.delta %}({{ s.delta.delta | pp }} pp, p {{ s.delta.p_value | pval }}){% endif %}</li>
{% endfor %}
</ul>
{% else %}<p class="empty">No significant regressions.</p>{% endif %}
</section>

<footer>
<p>skillgap {{ r.skillgap_version | default('?') }}
{% if timings %} · timings: {% for stage, secs in timings.items() %}{{ stage }} {{ secs | num(1) }} s{{ ', ' if not loop.last }}\
{% endfor %}{% endif %}</p>
<details><summary>config</summary><pre><code>{{ config_json }}</code></pre></details>
</footer>
</main>
</body>
</html>
"""


# ---------------------------------------------------------------- Skill-Mix

_SKILLMIX_METRICS = (("full_marks", "Ratio of Full Marks", C_AFTER), ("all_skills", "Ratio of All Skills", C_IMPROVED),
                     ("skill_fraction", "Skill Fraction", C_TRAIN))


def _skillmix_svg(by_k: list[dict[str, Any]]) -> str | None:
    """The three Skill-Mix aggregates against k, with their 95% intervals."""
    rows = [r for r in by_k if r["graded"]]
    if not rows:
        return None
    fig = _figure(PAGE_W_IN * 0.52, 3.0)
    ax = fig.add_subplot()
    ks = [r["k"] for r in rows]
    for key, label, colour in _SKILLMIX_METRICS:
        m = [r[key][0] * 100 for r in rows]
        lo = [r[key][1] * 100 if _finite(r[key][1]) else v for r, v in zip(rows, m)]  # one text: no interval
        hi = [r[key][2] * 100 if _finite(r[key][2]) else v for r, v in zip(rows, m)]
        ax.fill_between(ks, lo, hi, color=colour, alpha=0.15, linewidth=0)
        ax.plot(ks, m, color=colour, marker="o", markersize=4, linewidth=1.6, label=label)
    _k_axis(ax, ks, "k (skills asked for in one text)", "% of graded texts, 95% CI")
    return _to_svg(fig, "skillmix-by-k")


def render_skillmix(result: dict[str, Any]) -> str:
    """A Skill-Mix run as one HTML page: the aggregates by k (plot and table), per skill, and every draw."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_num)
    return env.from_string(_SKILLMIX_TEMPLATE).render(
        r=result, plot=_markup(_skillmix_svg(result["by_k"])), metrics=_SKILLMIX_METRICS,
        config_json=json.dumps(result["config"], indent=2, default=str))


_SKILLMIX_TEMPLATE = """<!DOCTYPE html>
{% macro cell(v) %}{{ v[0] | pct }}{% if v[1] is number and v[1] == v[1] %} \
<span class="ci">[{{ v[1] | pct }}, {{ v[2] | pct }}]</span>{% endif %}{% endmacro %}
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skillgap Skill-Mix: {{ r.student }}</title>
<style>""" + _CSS + """</style>
</head>
<body>
<main>
<header>
<h1>Skill-Mix</h1>
<dl>
<div><dt>student</dt><dd><code>{{ r.student }}</code></dd></div>
<div><dt>judge</dt><dd><code>{{ r.judge }}</code></dd></div>
<div><dt>inventory</dt><dd>{{ r.n_skills }} skills, {{ r.n_topics }} topics</dd></div>
<div><dt>rounds × grading runs</dt><dd>{{ r.config.rounds }} × {{ r.config.grading_runs }}</dd></div>
<div><dt>seed</dt><dd>{{ r.config.seed }}</dd></div>
<div><dt>run</dt><dd><code>{{ r.run_id }}</code></dd></div>
</dl>
<p class="muted">Each text is graded on k + 3 points (one per skill; topic; sense; at most k − 1 sentences,
counted, not judged). A judge reply whose table does not parse is a judge error: counted and shown, never scored 0.
The grades are only as good as the judge.</p>
</header>

<section id="by-k">
<h2>By k</h2>
<div class="cols">
{% if plot %}<figure class="plot side">{{ plot }}</figure>{% endif %}
<table>
<thead><tr><th>k</th><th>draws</th><th>graded</th><th>judge errors</th>
{% for key, label, _ in metrics %}<th>{{ label }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in r.by_k %}
<tr data-k="{{ row.k }}"><td>{{ row.k }}</td><td>{{ row.n | num }}</td><td>{{ row.graded | num }}</td>
<td>{{ row.judge_errors | num }}</td>
{% for key, label, _ in metrics %}<td>{{ cell(row[key]) }}</td>{% endfor %}</tr>
{% endfor %}
</tbody></table>
</div>
</section>

<section id="skills">
<h2>By skill</h2>
<table>
<thead><tr><th>skill</th><th>graded texts asking for it</th><th>point earned</th></tr></thead>
<tbody>
{% for s in r.skills %}
<tr data-skill="{{ s.skill }}"><td>{{ s.skill }}</td><td>{{ s.n | num }}</td>
<td>{{ s.rate | pct }} <span class="ci">[{{ s.ci[0] | pct }}, {{ s.ci[1] | pct }}]</span></td></tr>
{% endfor %}
</tbody></table>
</section>

<section id="draws">
<h2>Every draw</h2>
<table>
<thead><tr><th>draw</th><th>topic</th><th>skills</th><th>points</th><th>status</th><th>text</th></tr></thead>
<tbody>
{% for d in r.draws %}
<tr class="{{ 'regression' if d.status != 'ok' else '' }}" data-status="{{ d.status }}"><td>{{ d.id }}</td>
<td>{{ d.topic }}</td><td>{{ d.skills | join(', ') }}</td>
<td>{{ d.points | join(' ') if d.points else '—' }}</td><td>{{ d.status }}</td>
<td style="white-space:normal;text-align:left;max-width:460px">{{ d.text }}</td></tr>
{% endfor %}
</tbody></table>
</section>

<footer>
<details><summary>config</summary><pre><code>{{ config_json }}</code></pre></details>
</footer>
</main>
</body>
</html>
"""
