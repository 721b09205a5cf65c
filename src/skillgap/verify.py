"""Verify: did training help, skill by skill, and did anything get worse?

Before and after grade the *same* items, so the comparison is paired: what carries the evidence is
the items that flipped. For every skill, every k and overall:

- the change in accuracy (every item counts: an unparsed output is wrong), with a 95% interval
  from Newcombe's score method for paired proportions (Newcombe 1998, "Improved confidence
  intervals for the difference between binomial proportions based on paired data", method 10:
  the two Wilson intervals combined with the correlation of the pairs);
- an exact McNemar test (two-sided): under "no change" each discordant item (wrong -> right or
  right -> wrong) is a fair coin flip, so the p-value is a binomial tail on the discordant counts
  (scipy's `binomtest`);
- effect sizes: the risk difference, Cohen's h, and the discordant odds ratio (gained / lost).

Across skills (and across k) p-values are adjusted (statsmodels' `multipletests`), by Holm's
step-down method by default or Benjamini-Hochberg on request, so thirteen skills do not flag a
spurious regression every other run. A skill whose adjusted p is below alpha is flagged `improved`
or `regression`. Newcombe's paired interval, the clustered McNemar test and the seeds x items
bootstrap are written here: scipy and statsmodels have none of them.

Profiles of different items cannot be paired: `compare` then refuses, unless asked for the
unpaired test (a pooled two-proportion z-test with Newcombe's hybrid score interval for
independent samples), which is what two different test sets call for.

Also here: the check that no evaluation item was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from skillgap.errors import ConfigError, DataError, unknown_name
from skillgap.items import Item
from skillgap.profile import Profile, wilson

CORRECTIONS = ("holm", "bh", "none")


@dataclass(frozen=True)
class VerifyConfig:
    """How before and after are compared."""

    alpha: float = field(default=0.05, metadata={"help": "significance level, after the correction"})
    correction: str = field(default="holm", metadata={
        "help": "multiple-testing correction over skills and over k: holm (family-wise) | bh (Benjamini-Hochberg, "
                "false-discovery rate) | none"})
    paired: bool = True  # False: the unpaired test, for profiles of different items (`compare --unpaired`)

    def check(self) -> None:
        if self.correction not in CORRECTIONS:
            raise unknown_name("correction", self.correction, list(CORRECTIONS))
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be between 0 and 1, got {self.alpha}.")


# ---------------------------------------------------------------- tests and intervals


def mcnemar_p(gained: int, lost: int) -> float:
    """Exact two-sided McNemar p-value: the binomial test of the rarer flip among gained + lost at 1/2."""
    if gained + lost == 0:
        return 1.0
    from scipy.stats import binomtest  # lazy: scipy.stats takes a second to import

    return float(binomtest(min(gained, lost), gained + lost, 0.5).pvalue)


def newcombe_paired(both: int, lost: int, gained: int, neither: int) -> tuple[float, float]:
    """95% interval for after - before from the paired table (both right, right->wrong, wrong->right, both wrong).

    Newcombe (1998) method 10: square-and-add of the two Wilson intervals, less twice their
    covariance, with the correlation phi of the pairs (shrunk towards 0 by n/2 when positive).
    """
    n = both + lost + gained + neither
    if n == 0:
        return -1.0, 1.0
    p1, p2 = (both + lost) / n, (both + gained) / n
    l1, u1 = wilson(both + lost, n)
    l2, u2 = wilson(both + gained, n)
    margins = (both + lost) * (gained + neither) * (both + gained) * (lost + neither)
    a = both * neither - lost * gained
    phi = 0.0 if margins == 0 else (a - n / 2 if a > n / 2 else 0.0 if a >= 0 else a) / math.sqrt(margins)
    d = p2 - p1
    lo = d - math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    hi = d + math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    return max(-1.0, lo), min(1.0, hi)


def two_proportion_p(c1: int, n1: int, c2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z-test for p1 == p2 (1.0 when undefined): the unpaired test."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (c1 + c2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(c2 / n2 - c1 / n1) / se
    return math.erfc(z / math.sqrt(2))


def newcombe_unpaired(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    """95% interval for p2 - p1 of independent samples: Newcombe's hybrid score interval (1998, method 10)."""
    p1, p2 = c1 / n1 if n1 else 0.0, c2 / n2 if n2 else 0.0
    l1, u1 = wilson(c1, n1)
    l2, u2 = wilson(c2, n2)
    d = p2 - p1
    return max(-1.0, d - math.hypot(p2 - l2, u1 - p1)), min(1.0, d + math.hypot(u2 - p2, p1 - l1))


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h, the effect size of a change in a proportion: 2 asin sqrt(p2) - 2 asin sqrt(p1)."""
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


MULTITESTS = {"holm": "holm", "bh": "fdr_bh"}  # our names -> statsmodels' multipletests methods


def adjust(p_values: list[float], method: str = "holm") -> list[float]:
    """Adjusted p-values: reject where adjusted p <= alpha.

    holm: Holm's step-down, family-wise error (any false flag) at alpha. bh: Benjamini-Hochberg,
    false-discovery rate at alpha (more flags, some of them wrong). none: as they are.
    """
    if method == "none":
        return list(p_values)
    if method not in MULTITESTS:
        raise unknown_name("correction", method, list(CORRECTIONS))
    from statsmodels.stats.multitest import multipletests  # lazy: statsmodels takes a second to import

    return [float(p) for p in multipletests(p_values, method=MULTITESTS[method])[1]]


# ---------------------------------------------------------------- several seeds on shared items
# By hand: statsmodels has no clustered McNemar test, and scipy's `bootstrap` resamples one axis, not seeds and
# items together.


def cluster_mcnemar_p(changes: Iterable[int]) -> float:
    """Exact two-sided p of "no change" for runs repeated over seeds on the same items, an item's changes kept
    together: pooling the seeds' discordant pairs into one McNemar test counts an item once per seed as if the
    seeds were independent, which understates p when an item flips the same way in every seed.

    `changes`: per item, the sum over seeds of (right after) - (right before). Under the null each item's sum is
    as likely negative as positive (its labels swap on all of its seeds at once): the exact version of the
    clustered McNemar test of Durkalski et al. (Statistics in Medicine 22, 2003), items as the clusters. With one
    seed it is McNemar's exact test."""
    sizes: dict[int, int] = {}  # |change| -> how many items changed by that much
    observed = 0
    for c in changes:
        if c:
            sizes[abs(c)] = sizes.get(abs(c), 0) + 1
            observed += c
    dist = {0: 1}  # the null distribution of the summed change: counts out of 2^(items that changed)
    for size, m in sizes.items():
        new: dict[int, int] = {}
        for k in range(m + 1):  # k of the m items of this size count positive
            shift, ways = size * (2 * k - m), math.comb(m, k)
            for t, n in dist.items():
                new[t + shift] = new.get(t + shift, 0) + n * ways
        dist = new
    tail = sum(n for t, n in dist.items() if t >= abs(observed))  # symmetric: the other tail is the same
    return min(1.0, 2 * tail / 2 ** sum(sizes.values()))  # exact integers: no underflow


def cluster_bootstrap(per_seed: Callable[[Any], Any], n_seeds: int, n_items: int, n_boot: int = 2000,
                      seed: int = 0, combine: Callable[[Any], Any] | None = None) -> list[float]:
    """A statistic of runs over seeds measured on the same items, with a 95% percentile interval that resamples
    seeds and items together: the items are shared by every seed's run, so resampling seeds alone (or items
    alone) leaves out one source of spread.

    `per_seed(w)` maps item weights `w` (draws x items: how often each item is in a draw; all ones for the
    estimate itself) to values per draw and seed (draws x seeds x ...); `combine` maps the drawn seeds' values
    (draws x seeds x ...) to one number a draw, by default their mean. Returns [estimate, low, high]; draws
    where the statistic is undefined (nan) are left out of the interval. Deterministic given `seed`."""
    import numpy as np

    combine = combine or (lambda v: v.mean(axis=1))
    estimate = float(combine(per_seed(np.ones((1, n_items))))[0])
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n_items, np.full(n_items, 1 / n_items), size=n_boot).astype(float)
    values = per_seed(w)
    pick = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    draws = combine(np.take_along_axis(values, pick.reshape(pick.shape + (1,) * (values.ndim - 2)), axis=1))
    if np.isnan(draws).all():
        return [estimate, math.nan, math.nan]
    return [estimate, float(np.nanpercentile(draws, 2.5)), float(np.nanpercentile(draws, 97.5))]


# ---------------------------------------------------------------- one comparison


Pair = tuple[bool, bool]  # (right before, right after)


def paired_delta(pairs: list[Pair], unparsed: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """The change on one set of items graded twice."""
    n = len(pairs)
    both = sum(b and a for b, a in pairs)
    lost = sum(b and not a for b, a in pairs)
    gained = sum(a and not b for b, a in pairs)
    c1, c2 = both + lost, both + gained
    p1, p2 = (c1 / n, c2 / n) if n else (0.0, 0.0)
    lo, hi = newcombe_paired(both, lost, gained, n - both - lost - gained)
    return {"before": p1, "after": p2, "delta": p2 - p1, "delta_ci_low": lo, "delta_ci_high": hi,
            "n": n, "n_before": n, "n_after": n, "correct_before": c1, "correct_after": c2,
            "unparsed_before": unparsed[0], "unparsed_after": unparsed[1], "gained": gained, "lost": lost,
            "test": "mcnemar-exact", "p_value": mcnemar_p(gained, lost),
            "p_value_unpaired": two_proportion_p(c1, n, c2, n),
            "effect": {"risk_difference": p2 - p1, "cohens_h": cohens_h(p1, p2),
                       "odds_ratio": gained / lost if lost else None}}


def paired_counts(pairs: list[tuple[dict[str, Any], dict[str, Any]]], n_boot: int = 2000) -> dict[str, Any]:
    """The change on items answered several times (an imported log's epochs): accuracy over answers, the test over
    items. Each item's change in its share of right answers is one cluster (`cluster_mcnemar_p`, exact: McNemar's
    test when every item has one answer); the interval resamples items (seeded)."""
    import numpy as np

    def counts(r: dict[str, Any]) -> tuple[int, int]:
        return (r["attempts"], r["hits"]) if "attempts" in r else (1, int(bool(r["correct"])))

    tb, hb = np.array([counts(b) for b, _ in pairs]).T.reshape(2, -1)
    ta, ha = np.array([counts(a) for _, a in pairs]).T.reshape(2, -1)
    scale = math.lcm(*(int(t) for t in np.concatenate([tb, ta]))) if len(pairs) else 1
    changes = (ha * (scale // ta) - hb * (scale // tb)).astype(int)  # the change in each item's share, in 1/scale
    n = len(pairs)
    p1, p2 = (hb.sum() / tb.sum(), ha.sum() / ta.sum()) if n else (0.0, 0.0)
    lo = hi = 0.0
    if n:
        w = np.random.default_rng(0).multinomial(n, np.full(n, 1 / n), size=n_boot)
        d = (w @ ha) / (w @ ta) - (w @ hb) / (w @ tb)
        lo, hi = (float(x) for x in np.percentile(d, [2.5, 97.5]))
    return {"before": float(p1), "after": float(p2), "delta": float(p2 - p1), "delta_ci_low": lo, "delta_ci_high": hi,
            "n": n, "n_before": int(tb.sum()), "n_after": int(ta.sum()), "correct_before": int(hb.sum()),
            "correct_after": int(ha.sum()),
            "unparsed_before": sum(b["status"] != "ok" for b, _ in pairs),
            "unparsed_after": sum(a["status"] != "ok" for _, a in pairs),
            "gained": int((changes > 0).sum()), "lost": int((changes < 0).sum()),
            "test": "clustered-mcnemar-exact", "p_value": cluster_mcnemar_p(changes.tolist()),
            "p_value_unpaired": two_proportion_p(int(hb.sum()), int(tb.sum()), int(ha.sum()), int(ta.sum())),
            "effect": {"risk_difference": float(p2 - p1), "cohens_h": cohens_h(float(p1), float(p2)),
                       "odds_ratio": None}}


def unpaired_delta(b: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    """The change between two scores of different items (dicts with n, correct, accuracy, unparsed)."""
    p1, p2 = b["accuracy"], a["accuracy"]
    lo, hi = newcombe_unpaired(b["correct"], b["n"], a["correct"], a["n"])
    return {"before": p1, "after": p2, "delta": p2 - p1, "delta_ci_low": lo, "delta_ci_high": hi,
            "n_before": b["n"], "n_after": a["n"], "correct_before": b["correct"], "correct_after": a["correct"],
            "unparsed_before": b.get("unparsed", 0), "unparsed_after": a.get("unparsed", 0),
            "test": "two-proportion-z", "p_value": two_proportion_p(b["correct"], b["n"], a["correct"], a["n"]),
            "effect": {"risk_difference": p2 - p1, "cohens_h": cohens_h(p1, p2)}}


def _flag(rows: list[dict[str, Any]], cfg: VerifyConfig) -> None:
    for d, adj in zip(rows, adjust([d["p_value"] for d in rows], cfg.correction)):
        sig = adj <= cfg.alpha and d["delta"] != 0
        d.update(p_adjusted=adj, significant=sig, flag="" if not sig else "improved" if d["delta"] > 0
                 else "regression")


# ---------------------------------------------------------------- two profiles


def _records(profile: dict[str, Any], which: str) -> dict[str, dict[str, Any]]:
    recs = profile.get("records")
    if not recs:
        raise ConfigError(f"The {which} profile ({profile.get('run_id') or '?'}) has no per-item records (it was "
                          "written by an older skillgap): re-run its command to rebuild it, or pass --unpaired.")
    return {r["id"]: r for r in recs}


def every_item(profile: dict[str, Any], which: str) -> dict[str, Any]:
    """`profile` with accuracy over every item, as today's profiles count it. Profiles written before
    `unparsed_rate` existed left unparsed outputs out of `n` and of the accuracy: recomputed from their counts,
    so two profiles are never compared under two definitions of accuracy."""

    def score(d: dict[str, Any]) -> dict[str, Any]:
        if "unparsed_rate" in d:
            return d
        if not isinstance(d.get("unparsed"), int):
            raise ConfigError(f"The {which} profile ({profile.get('run_id') or '?'}) was written by an older "
                              "skillgap (accuracy over parsed items only, no 'unparsed' count to correct it with): "
                              "re-run its command to rebuild it.")
        n = d["n"] + d["unparsed"]
        return d | {"n": n, "accuracy": d["correct"] / n if n else 0.0,
                    "unparsed_rate": d["unparsed"] / n if n else 0.0}

    return profile | {"overall": score(profile["overall"]), "skills": [score(s) for s in profile["skills"]],
                      "by_k": [score(k) for k in profile["by_k"]]}


def pair_up(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """item id -> (before record, after record); an error unless both profiles graded the same items."""
    b, a = _records(before, "before"), _records(after, "after")
    only_b, only_a = sorted(set(b) - set(a)), sorted(set(a) - set(b))
    if only_b or only_a:
        raise ConfigError(
            f"Before ({before.get('run_id') or '?'}, {len(b)} items) and after ({after.get('run_id') or '?'}, "
            f"{len(a)} items) cover different items: {len(only_b)} only before"
            f"{f' (first: {only_b[0]!r})' if only_b else ''}, {len(only_a)} only after"
            f"{f' (first: {only_a[0]!r})' if only_a else ''}. A paired test needs the same items: measure both on "
            "the same data, seed and --limit, or pass --unpaired for the unpaired test.")
    return {i: (b[i], a[i]) for i in b}


def _paired_group(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    if any("attempts" in r for p in pairs for r in p):
        return paired_counts(pairs)
    return paired_delta([(b["correct"], a["correct"]) for b, a in pairs],
                        (sum(b["status"] != "ok" for b, _ in pairs), sum(a["status"] != "ok" for _, a in pairs)))


class Comparison(TypedDict):
    """What `compare` returns, and `report.json` keeps under `deltas`: one delta dict (`paired_delta` or
    `unpaired_delta`, flagged) per skill, per k and overall."""

    overall: dict[str, Any]
    skills: list[dict[str, Any]]
    by_k: list[dict[str, Any]]
    test: str  # mcnemar-exact (paired) | two-proportion-z (unpaired)
    correction: str
    alpha: float
    improved: list[str]
    regressions: list[str]
    only_before: list[str]  # skills one profile has and the other lacks
    only_after: list[str]


def compare(before: Profile | dict[str, Any], after: Profile | dict[str, Any],
            cfg: VerifyConfig | None = None) -> Comparison:
    """Per-skill, per-k and overall deltas, with improvements and regressions named. The profiles are `Profile`s, or
    their dicts as profile JSON files hold them."""
    cfg = cfg or VerifyConfig()
    cfg.check()
    before = before.to_dict() if isinstance(before, Profile) else before
    after = after.to_dict() if isinstance(after, Profile) else after
    if not cfg.paired:  # paired tests read the per-item records, which only today's profiles have
        before, after = every_item(before, "before"), every_item(after, "after")
    b_skills = {s["id"]: s for s in before["skills"]}
    a_skills = {s["id"]: s for s in after["skills"]}
    ids = [s for s in b_skills if s in a_skills]
    b_k = {r["k"]: r for r in before["by_k"]}
    ks = [r["k"] for r in after["by_k"] if r["k"] in b_k]
    if cfg.paired:
        pairs = list(pair_up(before, after).values())
        skills = [_paired_group([p for p in pairs if s in p[0]["skills"]]) for s in ids]
        by_k = [_paired_group([p for p in pairs if p[0]["k"] == k]) for k in ks]
        overall = _paired_group(pairs)
    else:
        skills = [unpaired_delta(b_skills[s], a_skills[s]) for s in ids]
        a_k = {r["k"]: r for r in after["by_k"]}
        by_k = [unpaired_delta(b_k[k], a_k[k]) for k in ks]
        overall = unpaired_delta(before["overall"], after["overall"])
    for d, s in zip(skills, ids):
        d.update(id=s, name=a_skills[s].get("name", s))
    for d, k in zip(by_k, ks):
        d["k"] = k
    _flag(skills, cfg)
    _flag(by_k, cfg)
    _flag([overall], VerifyConfig(cfg.alpha, "none", cfg.paired))
    return {"overall": overall, "skills": skills, "by_k": by_k, "test": overall["test"],
            "correction": cfg.correction, "alpha": cfg.alpha,
            "improved": [d["id"] for d in skills if d["flag"] == "improved"],
            "regressions": [d["id"] for d in skills if d["flag"] == "regression"],
            "only_before": sorted(set(b_skills) - set(a_skills)), "only_after": sorted(set(a_skills) - set(b_skills))}


def p_text(p: float) -> str:
    """A p-value as people write it: 0.016, 4e-7."""
    if p >= 0.001:
        return f"{p:.2g}"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def verdict_line(verdict: dict[str, Any]) -> str:
    """The verdict in one line: overall and per k first, then the skills that clear the correction.

    "improved: none" alone, under +25 points overall at p = 4e-7, reads as "nothing happened"; it only says
    that no single skill's few items clear the corrected bar."""
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no correction"}[verdict["correction"]]

    def change(d: dict[str, Any], adjusted: bool) -> str:
        p = f"p = {p_text(d['p_value'])}"
        if adjusted and verdict["correction"] != "none":
            p += f", {correction} {p_text(d['p_adjusted'])}"
        return (f"{100 * d['delta']:+.1f} pp [{100 * d['delta_ci_low']:+.1f}, {100 * d['delta_ci_high']:+.1f}], {p} "
                f"({'significant' if d['significant'] else 'not significant'})")

    skills = [f"{', '.join(verdict['improved'])} improved" if verdict["improved"] else "none improved",
              f"{', '.join(verdict['regressions'])} regressed" if verdict["regressions"] else "none regressed"]
    return "; ".join([f"overall {change(verdict['overall'], False)}",
                      *(f"k={d['k']} {change(d, True)}" for d in verdict["by_k"]),
                      f"per skill after {correction}: {', '.join(skills)}"])


# ---------------------------------------------------------------- leakage


def prompt_key(item: Item) -> str:
    """What makes two items the same question: the text of their user turns, with case and runs of whitespace aside
    (a system prompt or a worked answer does not make a question new)."""
    return " ".join(" ".join(m["content"] for m in item.chat() if m["role"] == "user").split()).casefold()


def overlap(train: Iterable[Item], test: Iterable[Item]) -> list[tuple[str, str, str]]:
    """(test id, training id, how) for every test item that is also a training item, by id or by prompt text."""
    ids, texts = set(), {}
    for it in train:
        ids.add(it.id)
        texts.setdefault(prompt_key(it), it.id)
    hits = []
    for it in test:
        if it.id in ids:
            hits.append((it.id, it.id, "same id"))
        elif (key := prompt_key(it)) and key in texts:
            hits.append((it.id, texts[key], "same prompt text"))
    return hits


def assert_disjoint(train: Iterable[Item], test: Iterable[Item], where: str = "the training items",
                    tested: str = "the test items") -> None:
    """Refuse, in one line, any test item that is also a training item, by id or by its prompt text.

    `train` is training data because of where it comes from (a pool, a training file, a stream), never because of
    an item's `split` label, which a file without one defaults to "test". Callers run this before any model work."""
    test = list(test)
    hits = overlap(train, test)
    if hits:
        first, trained, how = hits[0]
        also = "" if trained == first else f" as {trained!r}"
        raise DataError(tested, None, None, f"evaluation item {first!r} is also in the training set ({where}{also}, "
                        f"{how}); {len(hits)} of {len(test)} evaluation items are "
                        f"({', '.join(repr(h[0]) for h in hits[:3])}{', ...' if len(hits) > 3 else ''}): measure on "
                        "items the model never trained on, or take them out of the training data")
