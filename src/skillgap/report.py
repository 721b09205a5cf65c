"""Report pages: `skillgap run`'s report.json and report.html, and the Skill-Mix page.

This module holds the typed schema the run page reads (`Report`, built from the run's report dict in
one place), the plots, and the rendering; the HTML lives in `templates/*.html.j2` (one base with the
head and CSS, one page per report). A page must open anywhere, offline and forever, so plots are
inline SVG from matplotlib and the CSS is embedded: no CDN, no fonts, no scripts. matplotlib is
imported only when a plot is drawn.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, Undefined
from markupsafe import Markup

from skillgap.attribution import targets
from skillgap.io import write_text

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
    write_text(out / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    html_path = out / "report.html"
    write_text(html_path, render_html(report))
    return html_path


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page: embedded CSS, inline SVG plots, everything escaped."""
    r = Report.read(report)
    return _template("report.html.j2").render(
        r=r, skills_svg=_markup(_skills_svg(r.skills)), by_k_svg=_markup(_by_k_svg(r.by_k)),
        training_svg=_markup(_training_svg(r.training)), mixture_svg=_markup(_mixture_svg(r.mixture, r.skills)))


def _template(name: str) -> Template:
    """A page template of this package: autoescaped, and an error (not a blank) for a name the page lacks."""
    env = Environment(loader=PackageLoader("skillgap", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, pp=_pp, num=_num, pval=_pval)
    env.globals["colour"] = {"red": C_REGRESSION, "green": C_IMPROVED, "blue": C_AFTER}  # the plots' colours
    return env.get_template(name)


# ---------------------------------------------------------------- schema: what the page reads
# The run's report dict (recipes/run.py) is read here and only here. A part of a run that did not happen is None
# (the page says so); inside a part that did, a missing key is a KeyError now, not a blank on the page.


@dataclass(frozen=True)
class Score:
    """An accuracy over n graded items (unparsed outputs counted, as wrong) with its 95% interval."""

    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    unparsed: int = 0

    @classmethod
    def read(cls, d: dict[str, Any]) -> Score:
        return cls(d["n"], d["accuracy"], d["ci_low"], d["ci_high"], d.get("unparsed", 0))

    @classmethod
    def measured(cls, d: dict[str, Any] | None) -> Score | None:
        """None when nothing was measured (absent, or zero graded items)."""
        return cls.read(d) if d and d.get("n") else None


@dataclass(frozen=True)
class Delta:
    """After minus before on one slice (verify.compare): the change, its interval and test; flips when paired."""

    delta: float
    delta_ci_low: float
    delta_ci_high: float
    p_value: float
    test: str = ""
    p_adjusted: float | None = None
    gained: int | None = None  # paired only: items wrong before and right after
    lost: int | None = None

    @classmethod
    def read(cls, d: dict[str, Any] | None) -> Delta | None:
        if not d:
            return None
        return cls(d["delta"], d["delta_ci_low"], d["delta_ci_high"], d["p_value"], d.get("test", ""),
                   d.get("p_adjusted"), d.get("gained"), d.get("lost"))


@dataclass(frozen=True)
class Change:
    """One slice of the test items measured before and after (None: not measured there), and the test between."""

    before: Score | None
    after: Score | None
    delta: Delta | None


@dataclass(frozen=True)
class SkillRow(Change):
    id: str
    name: str
    flag: str  # "improved", "regression" or ""


@dataclass(frozen=True)
class KRow(Change):
    k: int


@dataclass(frozen=True)
class MixtureRow:
    id: str
    name: str
    n: int
    weight: float | None


@dataclass(frozen=True)
class MixtureSummary:
    """What the target stage allotted (target.Mixture.to_dict plus the budget)."""

    strategy: str | None  # the mixture's, else the run's
    n_examples: int
    budget: int
    order: str
    by_skill: list[MixtureRow]
    by_k: list[tuple[str, int]]  # sorted by k


@dataclass(frozen=True)
class TrainingSummary:
    """train.TrainResult as a dict; a run that only logged losses has None for the rest."""

    method: str | None
    steps: int | None
    examples_seen: int | None
    train_tokens: int | None
    seconds: float | None
    log: list[dict[str, Any]]  # step, loss, learning_rate
    val_loss: list[dict[str, Any]]  # step, skill, loss


@dataclass(frozen=True)
class Gap:
    """One skill the diagnosis named: its mastery (joint) or weight (counts), and the share of training examples
    that touch it."""

    id: str
    weight: float
    estimate: float | None  # the joint model's mastery, where the profile has it
    ci_low: float | None
    ci_high: float | None
    items: int | None
    touching: float | None


@dataclass(frozen=True)
class Diagnosis:
    """The profile the targeting read, when it was its own run, and what the chosen diagnosis named in it."""

    run_id: str
    overall: Score | None
    method: str | None = None  # --diagnosis
    gaps: list[Gap] = field(default_factory=list)
    confounded: list[list[str]] = field(default_factory=list)
    graded: int | None = None
    format_failures: int | None = None
    fallback: str | None = None  # why targeting trained on uniform instead


@dataclass(frozen=True)
class Report:
    """Everything report.html shows, read from a `skillgap run` report dict by `Report.read`."""

    title: str
    version: str
    model: str | None
    suite: str | None
    strategy: str | None
    budget: int | None
    seed: int | None
    overall: Change
    skills: list[SkillRow]
    by_k: list[KRow]
    verdict: str | None
    alpha: float
    correction: str  # the multiple-comparison correction of the skill flags: holm, bh or none
    diagnosis: Diagnosis | None
    mixture: MixtureSummary | None
    training: TrainingSummary | None
    timings: dict[str, float]
    config_json: str

    @property
    def n_improved(self) -> int:
        return sum(r.flag == "improved" for r in self.skills)

    @property
    def regressions(self) -> list[SkillRow]:
        return [r for r in self.skills if r.flag == "regression"]

    @classmethod
    def read(cls, report: dict[str, Any]) -> Report:
        before, after = report.get("before") or {}, report.get("after") or {}
        deltas = report["deltas"] or {}
        skills = _skill_rows(report)
        return cls(
            title=f"skillgap · {report.get('model', '?')} · {report.get('suite', '?')}",
            version=report.get("skillgap_version", "?"),
            model=report.get("model"), suite=report.get("suite"), strategy=report.get("strategy"),
            budget=report.get("budget"), seed=report.get("seed"),
            overall=Change(Score.measured(before.get("overall")), Score.measured(after.get("overall")),
                           Delta.read(deltas.get("overall"))),
            skills=skills, by_k=_k_rows(before, after, deltas), verdict=_verdict(report),
            alpha=deltas.get("alpha", 0.05), correction=deltas.get("correction", "holm"),
            diagnosis=_diagnosis(report.get("diagnosis"), (report.get("mixture") or {}).get("notes") or {}),
            mixture=_mixture(report.get("mixture"), skills, report.get("strategy")),
            training=_training(report.get("training")),
            timings=report.get("timings") or {},
            config_json=json.dumps(report.get("config") or {}, indent=2, default=str, sort_keys=True))


def _verdict(report: dict[str, Any]) -> str | None:
    """The one-line verdict (overall, per k, then per skill), as `skillgap run` prints it last."""
    from skillgap.verify import verdict_line

    deltas = report.get("deltas") or {}
    if "significant" not in (deltas.get("overall") or {}):
        return None
    flags = {k: report.get(k) or [] for k in ("improved", "regressions")}
    return verdict_line(deltas | flags)


def _skill_rows(report: dict[str, Any]) -> list[SkillRow]:
    """One row per skill seen anywhere (deltas first, then before, then after), in a stable order."""
    before = {s["id"]: s for s in (report.get("before") or {}).get("skills") or []}
    after = {s["id"]: s for s in (report.get("after") or {}).get("skills") or []}
    deltas = {d["id"]: d for d in (report.get("deltas") or {}).get("skills") or []}
    regressed, improved = set(report.get("regressions") or []), set(report.get("improved") or [])
    rows = []
    for sid in dict.fromkeys([*deltas, *before, *after]):
        b, a, d = before.get(sid), after.get(sid), deltas.get(sid)
        flag = (d or {}).get("flag") or ""
        if sid in regressed:
            flag = "regression"
        elif sid in improved and flag != "regression":
            flag = "improved"
        name = next((x["name"] for x in (d, a, b) if x and x.get("name")), sid)
        rows.append(SkillRow(Score.measured(b), Score.measured(a), Delta.read(d), id=sid, name=name, flag=flag))
    return rows


def _k_rows(before: dict[str, Any], after: dict[str, Any], deltas: dict[str, Any]) -> list[KRow]:
    b = {int(x["k"]): x for x in before.get("by_k") or []}
    a = {int(x["k"]): x for x in after.get("by_k") or []}
    d = {int(x["k"]): x for x in deltas.get("by_k") or []}
    return [KRow(Score.measured(b.get(k)), Score.measured(a.get(k)), Delta.read(d.get(k)), k=k)
            for k in sorted({*b, *a, *d})]


def _diagnosis(d: dict[str, Any] | None, notes: dict[str, Any]) -> Diagnosis | None:
    if not d:
        return None
    aim, mastery = notes.get("diagnosis") or {}, d.get("mastery") or {}
    if not aim and mastery:  # a profile without a training set (`skillgap compare`): its own joint gap list
        t = targets(d, "joint")
        aim, notes = t.to_dict(), notes | {"fallback": t.fallback}
    touching = notes.get("touching") or {}
    gaps = [Gap(s, w, *((m["estimate"], m["ci_low"], m["ci_high"], m["items"]) if (m := mastery.get(s))
                        else (None, None, None, None)), touching.get(s))
            for s, w in (aim.get("weights") or {}).items()]
    evidence = (d.get("attribution") or {}).get("evidence") or {}
    return Diagnosis(d.get("run_id", "?"), Score.read(d["overall"]) if d["overall"] else None, aim.get("method"),
                     gaps, (d.get("attribution") or {}).get("confounded") or [], evidence.get("graded"),
                     evidence.get("format_failures"), notes.get("fallback"))


def _mixture(m: dict[str, Any] | None, skills: list[SkillRow], run_strategy: str | None) -> MixtureSummary | None:
    if not m:
        return None
    names = {r.id: r.name for r in skills}
    weights = m.get("weights") or {}
    by_skill = [MixtureRow(sid, names.get(sid, sid), n, weights.get(sid)) for sid, n in m["by_skill"].items()]
    by_k = sorted(((str(k), v) for k, v in (m.get("by_k") or {}).items()), key=_k_sort)
    return MixtureSummary(m.get("strategy") or run_strategy, m["n_examples"], m["budget"], m["order"], by_skill, by_k)


def _k_sort(kv: tuple[str, Any]) -> tuple[int, str]:
    return (int(kv[0]), "") if kv[0].lstrip("-").isdigit() else (1 << 30, kv[0])


def _training(t: dict[str, Any] | None) -> TrainingSummary | None:
    if not t:
        return None
    return TrainingSummary(t.get("method", "?"), t.get("steps"), t.get("examples_seen"), t.get("train_tokens"),
                           t.get("seconds"), t.get("log") or [], t.get("val_loss") or [])


# ---------------------------------------------------------------- formatting (jinja filters)


def _finite(x: Any) -> bool:
    if isinstance(x, Undefined):
        str(x)  # a key the page's data lacks: StrictUndefined raises, naming it, where a filter would print "—"
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


def _err(score: Score) -> tuple[float, float]:
    acc = score.accuracy
    return max(0.0, acc - score.ci_low) * 100, max(0.0, score.ci_high - acc) * 100


def _skills_svg(rows: list[SkillRow]) -> str | None:
    """Grouped horizontal bars, before vs after, with 95% CIs; regressions in red and marked."""
    if not any(r.before or r.after for r in rows):
        return None
    n = len(rows)
    fig = _figure(PAGE_W_IN, max(2.2, 0.42 * n + 1.0))
    ax = fig.add_subplot()
    h = 0.38
    ebar = {"ecolor": "#333333", "capsize": 2.5, "elinewidth": 0.9}
    colour = {"regression": C_REGRESSION, "improved": C_IMPROVED}
    for i, r in enumerate(rows):
        y = n - 1 - i  # first skill on top
        if r.before:
            ax.barh(y + h / 2, r.before.accuracy * 100, h, color=C_BEFORE, xerr=[[e] for e in _err(r.before)],
                    error_kw=ebar)
        else:
            ax.text(1, y + h / 2, "not measured", va="center", fontsize=7, color="#777777")
        if r.after:
            ax.barh(y - h / 2, r.after.accuracy * 100, h, color=colour.get(r.flag, C_AFTER),
                    xerr=[[e] for e in _err(r.after)], error_kw=ebar)
        else:
            ax.text(1, y - h / 2, "not measured", va="center", fontsize=7, color="#777777")
    ax.set_yticks(range(n), [_tex_safe(("▼ " if r.flag == "regression" else "") + r.name)
                             for r in reversed(rows)])
    for tick, r in zip(ax.get_yticklabels(), reversed(rows)):
        if r.flag in colour:
            tick.set_color(colour[r.flag])
            tick.set_fontweight("bold")
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("accuracy (%), 95% CI")
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    from matplotlib.patches import Patch

    handles = [Patch(color=C_BEFORE, label="before"), Patch(color=C_AFTER, label="after")]
    if any(r.flag == "improved" for r in rows):
        handles.append(Patch(color=C_IMPROVED, label="after (improved)"))
    if any(r.flag == "regression" for r in rows):
        handles.append(Patch(color=C_REGRESSION, label="after (▼ regression)"))
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), frameon=False)
    return _to_svg(fig, "skills")


def _by_k_svg(rows: list[KRow]) -> str | None:
    """Accuracy against the number of composed skills, before and after, with 95% CI bands."""
    if not any(r.before or r.after for r in rows):
        return None
    fig = _figure(PAGE_W_IN * 0.52, 3.0)
    ax = fig.add_subplot()
    for side, colour in (("before", C_BEFORE), ("after", C_AFTER)):
        pts = [(r.k, getattr(r, side)) for r in rows if getattr(r, side)]
        if not pts:
            continue
        ks = [k for k, _ in pts]
        acc = [s.accuracy * 100 for _, s in pts]
        ax.fill_between(ks, [s.ci_low * 100 for _, s in pts], [s.ci_high * 100 for _, s in pts],
                        color=colour, alpha=0.18, linewidth=0)
        ax.errorbar(ks, acc, yerr=list(zip(*(_err(s) for _, s in pts))), color=colour, marker="o", markersize=4,
                    capsize=3, linewidth=1.6, label=side)
    _k_axis(ax, [r.k for r in rows], "k (skills composed per item)", "accuracy (%), 95% CI")
    return _to_svg(fig, "by-k")


def _k_axis(ax: Any, ks: list[int], xlabel: str, ylabel: str) -> None:
    """The axes of a percentage against k: one tick per k, 0-100, light horizontal grid."""
    ax.set_xticks(ks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.legend(frameon=False)


def _training_svg(training: TrainingSummary | None) -> str | None:
    """Train loss and per-skill validation loss against the optimiser step."""
    if training is None:
        return None
    log = [e for e in training.log if _finite(e.get("loss")) and _finite(e.get("step"))]
    val = [e for e in training.val_loss if _finite(e.get("loss")) and _finite(e.get("step"))]
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


def _mixture_svg(mixture: MixtureSummary | None, skills: list[SkillRow]) -> str | None:
    """Training examples per skill, as the target stage actually allotted them."""
    rows = mixture.by_skill if mixture else []
    if not rows:
        return None
    flags = {r.id: r.flag for r in skills}
    fig = _figure(PAGE_W_IN * 0.6, max(1.8, 0.3 * len(rows) + 0.9))
    ax = fig.add_subplot()
    ys = range(len(rows) - 1, -1, -1)
    ax.barh(list(ys), [r.n for r in rows], 0.6,
            color=[C_REGRESSION if flags.get(r.id) == "regression" else C_AFTER for r in rows])
    for y, r in zip(ys, rows):
        ax.text(r.n, y, f" {r.n:,}", va="center", fontsize=7)
    ax.set_yticks(list(ys), [_tex_safe(r.name) for r in rows])
    ax.set_xlabel("training examples")
    ax.margins(x=0.12)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    return _to_svg(fig, "mixture")


# ---------------------------------------------------------------- files


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
    return _template("skillmix.html.j2").render(
        r=result, plot=_markup(_skillmix_svg(result["by_k"])), metrics=_SKILLMIX_METRICS,
        config_json=json.dumps(result["config"], indent=2, default=str))
