"""Attribution: which skills a model is missing, fitted jointly over every graded item.

Counting the skills of wrong answers (STAT's Missing-Skill-Profile) blames whatever many items share: a
prerequisite that is a step of most composed items comes first even when the model never fails it alone. Per-skill
accuracy fails the other way: a healthy skill that mostly appears beside a gap inherits the gap's failures.
Cognitive diagnosis models fit all skills at once, so a failure is explained by the skill whose presence predicts
it. Here, the conjunctive "noisy-AND" model (NIDA with one respondent; Junker & Sijtsma 2001, Maris 1999), the
composite falling to its weakest link as "Law of the Weakest Link" (Zhong et al., ICLR 2025) measured for LLMs:

    P(item j correct) = g_j + (1 - g_j - s) * prod_{k in skills(j)} p_k,    p_k = sigmoid(phi_k)

g_j is the chance rate (1 / #choices where answers are choices, else 0), s one slip for the whole model, p_k the
mastery of skill k. Fitted by maximum a posteriori (phi_k ~ N(0, prior_sd^2), s ~ Beta(1, SLIP_B)) with
scipy's L-BFGS-B. Each skill's interval is the wider of a bootstrap over items and the posterior's own (Laplace):
the bootstrap collapses where a skill has few items, the posterior does not. Beside it, the logistic linear test model
(LLTM, Fischer 1973: logit P = theta + sum_k beta_k q_jk; statsmodels GLM) as a second, compensatory estimate.

Items cannot separate skills that always occur together (or, generally, whose columns of the item-by-skill matrix
are linearly dependent): those are reported as confounded groups, never ranked. Outputs with no gradable answer
say nothing about skills: they are counted as format failures, kept out of the fit, and a run where they dominate,
or where too few items were graded, is marked thin so targeting falls back instead of chasing noise. The fitted
model is checked against what was observed (accuracy by k, and per item): a bad fit says the inventory is missing a
skill. docs/attribution.md works a small case by hand.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from skillgap.errors import ConfigError

PRIOR_MEAN = 0.0  # phi_k's prior is centred on p = 0.5; its spread is AttributionConfig.prior_sd
SLIP_B = 20.0  # s ~ Beta(1, 20): a few percent of failures with every skill present, unless the items say more
Z95 = 1.959963984540054


@dataclass(frozen=True)
class AttributionConfig:
    """What decides a verdict. The defaults are the best of a grid on planted-gap simulations
    (benchmarks/results/attribution_planted.md), chosen before any benchmark student was diagnosed."""

    mastery: float = field(default=0.6, metadata={
        "help": "a skill is a gap when its mastery's upper 95%% bound is below this (and mastered when its lower "
                "bound is at least this)"})
    bootstrap: int = field(default=200, metadata={"help": "bootstrap draws over items for each skill's interval"})
    min_items: int = field(default=5, metadata={"help": "graded items a skill needs before it gets a verdict"})
    min_graded: int = 30  # graded items a run needs before its gaps are trusted
    prior_sd: float = 1.5  # phi_k ~ N(0, prior_sd^2): weak (95% of its mass in p 0.05-0.95)
    max_format_failures: float = 0.5  # above this share of ungradable outputs, the failures are about format
    seed: int = 0  # the bootstrap's draws

    def check(self) -> None:
        if not 0 < self.mastery < 1:
            raise ConfigError(f"--mastery is a probability in (0, 1), got {self.mastery}.")
        if self.bootstrap < 0 or self.min_items < 1 or self.min_graded < 1 or not self.prior_sd > 0:
            raise ConfigError("--bootstrap must be at least 0, --min-items at least 1.")


@dataclass(frozen=True)
class Mastery:
    """One skill: its estimated mastery, the interval, the verdict and the evidence it rests on."""

    skill: str
    estimate: float  # p_k, the noisy-AND MAP (for a confounded group: the group's joint p)
    ci_low: float
    ci_high: float
    verdict: str  # "gap" | "mastered" | "unsure" | "thin" (fewer than min_items) | "confounded"
    items: int  # graded items with this skill
    wrong: int
    by_k: dict[str, int]  # of those items, how many compose k skills
    accuracy: float  # correct / graded items with the skill, for comparison
    lltm: float | None = None  # the logistic linear model's P(correct) of an item with this skill alone
    lltm_ci: tuple[float, float] | None = None
    group: tuple[str, ...] = ()  # the skills it cannot be told apart from (confounded)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["group"], d["lltm_ci"] = list(self.group), list(self.lltm_ci) if self.lltm_ci else None
        return d


@dataclass
class Attribution:
    """Every skill's mastery, the gaps weakest first, what cannot be separated, and how much evidence there is."""

    mastery: dict[str, Mastery]
    gaps: list[str]  # verdict "gap", weakest first
    confounded: list[list[str]]  # skill groups the items cannot separate: reported, never ranked
    slip: float
    evidence: dict[str, Any]  # items, graded, format failures, wrong; thin (and why)
    check: dict[str, Any]  # the fitted model against the observed: accuracy by k, per item
    config: AttributionConfig = field(default_factory=AttributionConfig)

    @property
    def thin(self) -> str | None:
        """Why the evidence is too thin to name gaps, or None."""
        return self.evidence.get("thin")

    def shortfalls(self) -> dict[str, float]:
        """How far each gap is below mastery: what targeting spreads its budget by."""
        return {s: self.config.mastery - self.mastery[s].estimate for s in self.gaps}

    def mastered(self) -> set[str]:
        """Skills at or above the mastery threshold by their estimate, not confounded: safe company for a gap."""
        return {s for s, m in self.mastery.items()
                if m.verdict in ("mastered", "unsure") and m.estimate >= self.config.mastery}

    def to_dict(self) -> dict[str, Any]:
        return {"mastery": {s: m.to_dict() for s, m in self.mastery.items()}, "gaps": self.gaps,
                "confounded": self.confounded, "slip": self.slip, "evidence": self.evidence, "check": self.check,
                "config": asdict(self.config)}


# ---------------------------------------------------------------- input


def outcomes_of(rows: Iterable[Mapping[str, Any]], where: str = "<records>") -> list[dict[str, Any]]:
    """Graded rows `{"id", "skills", "correct"}` (any source), checked; `correct` null or a `status` other than "ok"
    is an ungradable output. Optional: `chance` (or `choices`, a count or list) for items answered by choosing."""
    from skillgap.errors import DataError

    out = []
    for i, r in enumerate(rows, start=1):
        if not isinstance(r, Mapping):
            raise DataError(where, i, None, f"expected an object, got {type(r).__name__}")
        skills = r.get("skills")
        if not isinstance(skills, (list, tuple)) or not all(isinstance(s, str) and s for s in skills):
            raise DataError(where, i, "skills", "expected a list of skill ids (non-empty strings)")
        correct, status = r.get("correct"), r.get("status", "ok")
        if not (correct is None or isinstance(correct, bool) or type(correct) is int and correct in (0, 1)):
            raise DataError(where, i, "correct", f"expected true, false or null (ungradable), got {correct!r}")
        choices = r.get("choices")
        chance = r.get("chance", 1 / (choices if isinstance(choices, int) else len(choices)) if choices else 0.0)
        if not isinstance(chance, (int, float)) or not 0 <= chance < 1:
            raise DataError(where, i, "chance", f"expected a probability in [0, 1), got {chance!r}")
        graded = correct is not None and status == "ok"
        row = {"id": str(r.get("id", i)), "skills": tuple(dict.fromkeys(skills)),
               "correct": bool(correct) if graded else None, "chance": float(chance)}
        if "attempts" in r and graded:  # answered several times: `hits` of `attempts`, less the `ungraded` ones
            att, hits = r["attempts"] - r.get("ungraded", 0), r.get("hits")
            if not (type(att) is int and att >= 1 and type(hits) is int and 0 <= hits <= att):
                raise DataError(where, i, "hits", f"expected 0 <= hits <= graded attempts, got {hits!r} of {att!r}")
            row |= {"attempts": att, "hits": hits}
        out.append(row)
    return out


# ---------------------------------------------------------------- the model


def confounded_groups(q: Any) -> tuple[list[list[int]], list[list[int]]]:
    """(groups of columns that are identical: skills that always occur together; sets of groups whose columns are
    linearly dependent all the same), from the item-by-skill matrix `q` (0/1). The product model is linear in
    log p, so a skill is identified exactly when its column is independent of the others'."""
    import numpy as np

    by_col: dict[bytes, list[int]] = {}
    for k in range(q.shape[1]):
        by_col.setdefault(q[:, k].astype(np.int8).tobytes(), []).append(k)
    groups = list(by_col.values())
    x = np.unique(np.stack([q[:, g[0]] for g in groups], axis=1), axis=0).astype(float)
    _, sv, vt = np.linalg.svd(x, full_matrices=True)
    rank = int((sv > 1e-9 * max(1.0, sv.max(initial=0))).sum())
    null = vt[rank:]
    tangled: list[list[int]] = []
    if len(null):
        involved = [i for i in range(len(groups)) if np.abs(null[:, i]).max() > 1e-8]
        if involved:
            tangled.append(involved)
    return groups, tangled


def neg_log_posterior(theta: Any, x: Any, n: Any, c: Any, g: Any, sd: float) -> tuple[float, Any]:
    """Minus the log posterior of the noisy-AND model on aggregated rows, and its gradient.

    theta = (phi_1..phi_K, s); x: rows x K (0/1), n: weight of each row, c: its weighted correct count, g: chance."""
    import numpy as np

    phi, s = theta[:-1], theta[-1]
    log_p = -np.logaddexp(0.0, -phi)  # log sigmoid(phi)
    prod = np.exp(x @ log_p)
    a = 1.0 - g - s
    p = np.clip(g + a * prod, 1e-12, 1 - 1e-12)
    ll = c * np.log(p) + (n - c) * np.log1p(-p)
    dp = c / p - (n - c) / (1 - p)  # d ll / d P
    grad_phi = ((dp * a * prod) @ x) * (1.0 - np.exp(log_p))
    grad_s = -(dp * prod).sum()
    prior = -0.5 * ((phi - PRIOR_MEAN) / sd) ** 2
    grad_prior = -(phi - PRIOR_MEAN) / sd ** 2
    slip_prior = (SLIP_B - 1) * math.log1p(-s)
    value = -(ll.sum() + prior.sum() + slip_prior)
    grad = -np.concatenate([grad_phi + grad_prior, [grad_s - (SLIP_B - 1) / (1 - s)]])
    return float(value), grad


def map_fit(x: Any, n: Any, c: Any, g: Any, sd: float, start: Any | None = None) -> Any:
    """The MAP of (phi, s); `start` warm-starts a bootstrap refit from the full fit."""
    import numpy as np
    from scipy.optimize import minimize

    k = x.shape[1]
    theta0 = np.concatenate([np.zeros(k), [0.02]]) if start is None else start
    bounds = [(-12.0, 12.0)] * k + [(0.0, 0.5)]
    res = minimize(neg_log_posterior, theta0, args=(x, n, c, g, sd), jac=True, method="L-BFGS-B", bounds=bounds)
    return res.x


def laplace_interval(theta: Any, x: Any, n: Any, c: Any, g: Any, sd: float) -> tuple[Any, Any]:
    """95% interval of each p_k from the posterior's curvature at the MAP (Laplace's approximation on the logit
    scale; the Hessian by central differences of the analytic gradient)."""
    import numpy as np

    k, h = len(theta), 1e-4
    hess = np.zeros((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = h if i < k - 1 else min(h, max(theta[-1], 1e-9), 0.5 - theta[-1])  # s stays in [0, 0.5]
        if step[i] <= 0:
            hess[i, i] = 1.0
            continue
        up = neg_log_posterior(theta + step, x, n, c, g, sd)[1]
        down = neg_log_posterior(theta - step, x, n, c, g, sd)[1]
        hess[:, i] = (up - down) / (2 * step[i])
    hess = (hess + hess.T) / 2
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(hess)
    spread = np.sqrt(np.clip(np.diag(cov)[:-1], 0, None))
    phi = theta[:-1]
    return 1 / (1 + np.exp(-(phi - Z95 * spread))), 1 / (1 + np.exp(-(phi + Z95 * spread)))


def lltm(q: Any, y: Any) -> tuple[Any, Any] | None:
    """The logistic linear test model, logit P = theta + sum_k beta_k q_jk, by statsmodels' binomial GLM: each
    skill's P(correct) alone, sigmoid(theta + beta_k), with a 95% Wald interval. One right and one wrong
    pseudo-item of weight 1/2 per skill keep a skill that is never (or always) failed finite."""
    import numpy as np
    import statsmodels.api as sm

    k = q.shape[1]
    x = np.vstack([q, np.eye(k), np.eye(k)])
    yy = np.concatenate([y, np.ones(k), np.zeros(k)])
    w = np.concatenate([np.ones(len(y)), np.full(2 * k, 0.5)])
    design = np.hstack([np.ones((len(x), 1)), x])
    if np.linalg.matrix_rank(design) <= k:  # every item holds one skill: theta is not apart from the betas; drop it
        design = x
    try:
        with warnings.catch_warnings():  # a skill never failed (or never passed) leaves a wide interval, not an error
            warnings.simplefilter("ignore")
            fit = sm.GLM(yy, design, family=sm.families.Binomial(), freq_weights=w).fit()
    except (ValueError, np.linalg.LinAlgError):
        return None
    # theta + beta_k (or beta_k alone without theta): an item of skill k alone
    contrast = np.hstack([np.ones((k, 1)), np.eye(k)]) if design.shape[1] > k else np.eye(k)
    eta = contrast @ fit.params
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", contrast, fit.cov_params(), contrast), 0))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    return sig(eta), np.stack([sig(eta - Z95 * se), sig(eta + Z95 * se)], axis=1)


def attribute(outcomes: Sequence[Mapping[str, Any]], cfg: AttributionConfig | None = None,
              skills: Sequence[str] | None = None) -> Attribution:
    """Fit every skill's mastery jointly over graded `outcomes` (rows as `outcomes_of` reads them); `skills` orders
    them (default: as they first appear). Deterministic given cfg.seed."""
    import numpy as np

    cfg = cfg or AttributionConfig()
    cfg.check()
    rows = outcomes_of(outcomes)
    graded = [r for r in rows if r["correct"] is not None]
    ids = list(dict.fromkeys([*(skills or ()), *(s for r in rows for s in r["skills"])]))
    seen = [s for s in ids if any(s in r["skills"] for r in graded)]
    evidence = {"items": len(rows), "graded": len(graded), "format_failures": len(rows) - len(graded),
                "format_failure_rate": (len(rows) - len(graded)) / len(rows) if rows else 0.0,
                "wrong": sum(not r["correct"] for r in graded),
                "skills_without_graded_items": [s for s in ids if s not in seen]}
    if len(graded) < cfg.min_graded:
        evidence["thin"] = (f"only {len(graded)} of {len(rows)} items were graded (fewer than {cfg.min_graded}): "
                            "too few to name gaps")
    elif evidence["format_failure_rate"] > cfg.max_format_failures:
        evidence["thin"] = (f"{evidence['format_failures']} of {len(rows)} outputs had no gradable answer: the "
                            "failures are mostly about the answer format, not about skills")
    if not seen:
        return Attribution({}, [], [], 0.0, evidence, {}, cfg)

    col = {s: i for i, s in enumerate(seen)}
    q = np.zeros((len(graded), len(seen)))
    for j, r in enumerate(graded):
        q[j, [col[s] for s in r["skills"] if s in col]] = 1
    # an item answered several times (an imported log's epochs) weighs its attempts: y counts its right answers
    a = np.array([float(r.get("attempts", 1)) for r in graded])
    y = np.array([float(r["hits"]) if "hits" in r else float(r["correct"]) for r in graded])
    chance = np.array([r["chance"] for r in graded])
    groups, tangled = confounded_groups(q)
    xg = np.stack([q[:, g[0]] for g in groups], axis=1)  # one parameter per group of identical columns
    # rows with the same skills and chance rate share P: fit on their counts (and refit each bootstrap draw so)
    keys = [tuple(row) + (ch,) for row, ch in zip(xg.astype(int).tolist(), chance)]
    uniq = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    row_of = np.array([uniq[key] for key in keys])
    xu = np.array([key[:-1] for key in uniq], dtype=float)
    gu = np.array([key[-1] for key in uniq])

    def fit_weights(w: Any, start: Any = None) -> Any:
        n = np.bincount(row_of, weights=w * a, minlength=len(uniq))
        c = np.bincount(row_of, weights=w * y, minlength=len(uniq))
        return map_fit(xu, n, c, gu, cfg.prior_sd, start)

    theta = fit_weights(np.ones(len(graded)))
    rng = np.random.default_rng(cfg.seed)
    draws = np.array([fit_weights(rng.multinomial(len(graded), np.full(len(graded), 1 / len(graded))).astype(float),
                                  theta) for _ in range(cfg.bootstrap)]) if cfg.bootstrap else theta[None]
    p_hat = 1 / (1 + np.exp(-theta[:-1]))
    p_draws = 1 / (1 + np.exp(-draws[:, :-1]))
    lo, hi = np.percentile(p_draws, [2.5, 97.5], axis=0)
    # A bootstrap of a MAP estimate collapses where a skill has few items (every draw fails them all, or the prior
    # holds every draw in place); the posterior's own spread (Laplace, at the MAP) does not. The wider of the two.
    n_all = np.bincount(row_of, weights=a, minlength=len(uniq))
    c_all = np.bincount(row_of, weights=y, minlength=len(uniq))
    post_lo, post_hi = laplace_interval(theta, xu, n_all, c_all, gu, cfg.prior_sd)
    lo, hi = np.minimum(lo, post_lo), np.maximum(hi, post_hi)
    reps = a.astype(int)  # the logistic model on one row per answer
    lin = lltm(np.repeat(q, reps, axis=0),
               np.concatenate([np.arange(t) < h for t, h in zip(reps, y.astype(int))]).astype(float))

    tangled_skills = {seen[k] for t in tangled for gi in t for k in groups[gi]}
    confounded = [[seen[k] for k in g] for g in groups if len(g) > 1]
    if tangled_skills:
        confounded.append([s for s in seen if s in tangled_skills])
    rate = y / a  # each item's share of right answers
    mastery: dict[str, Mastery] = {}
    for gi, g in enumerate(groups):
        for k in g:
            s = seen[k]
            mine = q[:, k] > 0
            ks = Counter(int(q[j].sum()) for j in np.flatnonzero(mine))
            group = tuple(seen[i] for i in g) if len(g) > 1 else ()
            if s in tangled_skills:
                group = tuple(x for c in confounded if s in c for x in c)
            n_items = int(mine.sum())
            if group:
                verdict = "confounded"
            elif n_items < cfg.min_items:
                verdict = "thin"
            elif hi[gi] < cfg.mastery:
                verdict = "gap"
            elif lo[gi] >= cfg.mastery:
                verdict = "mastered"
            else:
                verdict = "unsure"
            mastery[s] = Mastery(s, float(p_hat[gi]), float(lo[gi]), float(hi[gi]), verdict, n_items,
                                 int((rate[mine] < 1).sum()), {str(kk): v for kk, v in sorted(ks.items())},
                                 float(rate[mine].mean()),
                                 float(lin[0][k]) if lin else None,
                                 (float(lin[1][k, 0]), float(lin[1][k, 1])) if lin else None, group)
    gaps = sorted((s for s, m in mastery.items() if m.verdict == "gap"), key=lambda s: (mastery[s].estimate, s))
    predicted = chance + (1 - chance - theta[-1]) * np.exp(xg @ np.log(p_hat))
    return Attribution(mastery, gaps, confounded, float(theta[-1]), evidence, model_check(graded, rate, predicted), cfg)


def model_check(graded: list[Mapping[str, Any]], y: Any, predicted: Any) -> dict[str, Any]:
    """The fitted model against the observed: accuracy by number of skills k (the Skill-Mix / weakest-link curve),
    with a flag where the two differ by more than twice the binomial error, and every item's predicted P."""
    import numpy as np

    ks = np.array([len(r["skills"]) for r in graded])
    by_k = []
    for k in sorted(set(ks.tolist())):
        m = ks == k
        obs, pred = float(y[m].mean()), float(predicted[m].mean())
        se = math.sqrt(max(pred * (1 - pred), 1e-4) / m.sum())
        by_k.append({"k": k, "items": int(m.sum()), "observed": obs, "predicted": pred,
                     "misfit": bool(abs(obs - pred) > 2 * se)})
    brier = float(np.mean((predicted - y) ** 2))
    return {"by_k": by_k, "brier": brier, "brier_base": float(np.mean((y.mean() - y) ** 2)),
            "misfit": [r["k"] for r in by_k if r["misfit"]],
            "items": [{"id": r["id"], "predicted": round(float(p), 4), "correct": bool(c)}
                      for r, p, c in zip(graded, predicted, y)]}


# ---------------------------------------------------------------- diagnoses for targeting

DIAGNOSES = ("joint", "count", "accuracy", "teacher")


@dataclass(frozen=True)
class Targets:
    """What targeting spends its budget on: skill -> weight (counts for STAT's profile, shortfalls below mastery for
    the others), the skills safe to appear beside a gap (None: unknown, STAT's rule applies), and why the run falls
    back to uniform (None: it does not)."""

    method: str
    weights: dict[str, float]
    mastered: frozenset[str] | None = None
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "weights": self.weights,
                "mastered": sorted(self.mastered) if self.mastered is not None else None, "fallback": self.fallback}


def accuracy_gaps(outcomes: Sequence[Mapping[str, Any]], cfg: AttributionConfig) -> tuple[dict[str, float], set[str]]:
    """Per-skill accuracy on the graded items (Wilson interval): gaps (upper bound below mastery) with their
    shortfall, and the skills at or above it. The baseline a joint model must beat where skills co-occur."""
    from statsmodels.stats.proportion import proportion_confint

    graded = [r for r in outcomes if r["correct"] is not None]
    out, ok = {}, set()
    for s in dict.fromkeys(x for r in graded for x in r["skills"]):
        ys = [r["correct"] for r in graded if s in r["skills"]]
        acc = sum(ys) / len(ys)
        if len(ys) >= cfg.min_items and proportion_confint(sum(ys), len(ys), 0.05, "wilson")[1] < cfg.mastery:
            out[s] = cfg.mastery - acc
        elif acc >= cfg.mastery:
            ok.add(s)
    return dict(sorted(out.items(), key=lambda kv: -kv[1])), ok


def targets(profile: Mapping[str, Any], method: str, cfg: AttributionConfig | None = None) -> Targets:
    """The missing skills a profile (as `skillgap profile` writes it) names, by `method`:

    - joint: the noisy-AND gaps, weighted by how far each is below mastery (`attribute`);
    - count: STAT's Missing-Skill-Profile, the profile's `missing` (first broken step, or a teacher's);
    - accuracy: per-skill accuracy below mastery;
    - teacher: the profile's `missing` when a teacher made it (`skillgap diagnose`).

    Whatever the method, a profile whose evidence is thin (too few graded items, or mostly format failures) says
    so in `fallback`: targeting then trains on uniform examples, which also teach the answer format."""
    from skillgap.errors import unknown_name

    if method not in DIAGNOSES:
        raise unknown_name("diagnosis", method, DIAGNOSES)
    cfg = cfg or AttributionConfig()
    rows = outcomes_of(profile.get("records") or [], "profile records")
    fit = attribute(rows, cfg) if rows else None
    # a profile without its item outcomes (made by hand, or by an older skillgap) has counts and nothing to weigh them
    fallback = fit.thin if fit else None if method in ("count", "teacher") else "the profile has no graded items"
    if method in ("count", "teacher"):
        made_by = (profile.get("diagnosis") or {}).get("method")
        if method == "teacher" and made_by != "teacher":
            raise ConfigError("--diagnosis teacher needs a teacher's profile: run `skillgap diagnose RUN --teacher "
                              "MODEL --output-path msp.json`, then pass --profile msp.json.")
        weights = {s: float(n) for s, n in (profile.get("missing") or {}).items() if n > 0}
        mastered = None
    elif method == "accuracy":
        weights, ok = accuracy_gaps(rows, cfg)
        mastered = frozenset(ok)
    else:
        weights = fit.shortfalls() if fit else {}
        mastered = frozenset(fit.mastered()) if fit else frozenset()
    if not fallback and not weights:
        fallback = f"the {method} diagnosis names no missing skill"
    return Targets(method, weights, mastered, fallback)
