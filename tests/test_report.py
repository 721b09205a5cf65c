"""The report stage: report.json round-trips and report.html is one self-contained page.

The browser test opens the page in real headless Chromium with every host name unresolvable, so
anything the page tried to fetch from the network would be missing from the rendered DOM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from skillgap.profile import wilson
from skillgap.report import render_html, write_report
from skillgap.verify import VerifyConfig, compare

SKILLS = {  # id -> (name, (n, correct, unparsed) before, after)
    "add_multi": ("multi-digit addition", (120, 54, 3), (120, 93, 0)),
    "sub_borrow": ("subtraction with borrow", (110, 40, 5), (110, 77, 1)),
    "mul_table": ("times tables", (100, 88, 0), (100, 70, 0)),  # the regression
    "div_exact": ("exact division", (90, 31, 2), (90, 33, 2)),
    "paren_order": ("order of operations", (80, 22, 4), (80, 45, 1)),
}
BY_K = {1: ((200, 130, 4), (200, 160, 1)), 2: ((150, 70, 6), (150, 95, 2)), 3: ((100, 25, 4), (100, 40, 1))}


def _score(n: int, correct: int, unparsed: int) -> dict[str, Any]:
    lo, hi = wilson(correct, n)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else 0.0, "ci_low": lo, "ci_high": hi,
            "unparsed": unparsed, "unparsed_rate": unparsed / n if n else 0.0}


def _profile(run_id: str, side: int) -> dict[str, Any]:
    skills = [{"id": sid, "name": name} | _score(*counts[side]) | {"alone": {"n": 40, "accuracy": 0.5}}
              for sid, (name, *counts) in SKILLS.items()]
    by_k = [{"k": k} | _score(*sides[side]) for k, sides in BY_K.items()]
    totals = [sum(v[side][i] for v in BY_K.values()) for i in range(3)]
    return {"run_id": run_id, "model": "smollm2-135m", "data": "arith", "overall": _score(*totals),
            "skills": skills, "by_k": by_k, "missing": {"add_multi": 40, "sub_borrow": 31, "paren_order": 25}}


def make_report() -> dict[str, Any]:
    before, after = _profile("smollm2-arith-s0-aaaa1111", 0), _profile("smollm2-arith-s0-bbbb2222", 1)
    # the verify stage, unpaired: these profiles are aggregates without per-item records (test_run covers paired)
    verdict = compare(before, after, VerifyConfig(paired=False))
    val_loss = [{"step": s, "skill": sid, "loss": 2.0 / (1 + s / (20 + 5 * i))}
                for s in (8, 16, 24, 32) for i, sid in enumerate(SKILLS)]
    return {
        "skillgap_version": "0.1.0",
        "config": {"model": {"model": "smollm2-135m", "dtype": "float32"}, "target": {"strategy": "stat-sel",
                   "budget": 512}, "train": {"method": "lora", "lr": 5e-4, "rank": 16}, "seed": 0},
        "model": "hf:smollm2-135m@0123abcd", "suite": "arith", "strategy": "stat-sel", "budget": 512, "seed": 0,
        "before": before, "after": after, "diagnosis": before | {
            "run_id": "smollm2-arith-s1-cccc3333",
            "mastery": {"paren_order": {"estimate": 0.12, "ci_low": 0.05, "ci_high": 0.22, "items": 40},
                        "sub_borrow": {"estimate": 0.41, "ci_low": 0.3, "ci_high": 0.52, "items": 60}},
            "attribution": {"evidence": {"graded": 180, "format_failures": 20}, "confounded": [["a", "b"]]}},
        "deltas": {k: verdict[k] for k in ("overall", "skills", "by_k", "test", "correction", "alpha")},
        "improved": verdict["improved"], "regressions": verdict["regressions"],
        "mixture": {"strategy": "stat-sel", "budget": 512, "n_examples": 512, "order": "shuffled",
                    "by_skill": {"add_multi": 160, "sub_borrow": 130, "paren_order": 110, "div_exact": 82,
                                 "mul_table": 30},
                    "by_k": {"1": 200, "2": 180, "3": 132},
                    "weights": {"add_multi": 0.31, "sub_borrow": 0.25, "paren_order": 0.21, "div_exact": 0.16,
                                "mul_table": 0.07},
                    "notes": {"diagnosis": {"method": "joint", "weights": {"paren_order": 0.48, "sub_borrow": 0.19}},
                              "touching": {"paren_order": 0.55, "sub_borrow": 0.3}}},
        "training": {"method": "lora", "steps": 32, "examples_seen": 512, "train_tokens": 40000, "seconds": 210.5,
                     "log": [{"step": s, "loss": 2.3 * 0.95 ** s, "learning_rate": 5e-4 * (1 - s / 32)}
                             for s in range(1, 33)],
                     "val_loss": val_loss},
        "timings": {"diagnose": 80.1, "before": 90.2, "target": 0.5, "train": 210.5, "after": 40.0},
    }


SECTIONS = ("summary", "skills", "by-k", "training", "mixture", "regressions")
EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def test_fixture_has_the_cases_the_page_must_show() -> None:
    report = make_report()
    assert report["regressions"] == ["mul_table"]
    assert {"add_multi", "sub_borrow", "paren_order"} <= set(report["improved"])
    assert "div_exact" not in report["improved"] + report["regressions"]


def test_write_report(tmp_path: Path) -> None:
    report = make_report()
    html_path = write_report(report, tmp_path / "out")

    assert html_path == tmp_path / "out" / "report.html"
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    assert sorted(p.name for p in html_path.parent.iterdir()) == ["report.html", "report.json"]  # no .tmp left

    html = html_path.read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html
    assert html.count("<svg") == 4  # skills, by-k, training, mixture
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html and "<metadata>" not in html
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)  # SVG's url(#clip) references stay inside the page

    rows = dict(re.findall(r'<tr data-skill="([^"]+)"( class="[^"]*")?>', html.split('id="mixture"')[0]))
    assert set(rows) == set(SKILLS)
    assert rows["mul_table"] == ' class="regression"'
    assert rows["add_multi"] == ' class="improved"' and rows["div_exact"] == ""
    regressions = html.split('id="regressions"')[1]
    assert "times tables" in regressions and "No significant regressions." not in regressions
    assert '<b id="n-regressions">1</b>' in html and '<b id="n-improved">3</b>' in html
    summary = html.split('id="headline"')[1].split("</p>")[0]
    assert "50.0%" in summary and "65.6%" in summary and "+15.6" in summary  # 225/450 -> 295/450
    assert "No training in this run" not in html
    assert ">3 unparsed (2.5%)<" in html and "counted in n, as wrong" in html  # format failures beside n
    assert "Unpaired: two-proportion z-tests" in html and "(Holm)" in html
    assert "&#34;lr&#34;: 0.0005" in html or "&quot;lr&quot;: 0.0005" in html  # the config, escaped


def test_the_verdict_states_overall_and_k_before_the_skills() -> None:
    verdict = render_html(make_report()).split('id="verdict"')[1].split("</p>")[0]
    assert verdict.index("overall +15.6 pp") < verdict.index("k=1 +15.0 pp") < verdict.index("per skill after Holm:")
    assert "mul_table regressed" in verdict and "(significant)" in verdict


def test_render_is_deterministic() -> None:
    report = make_report()
    assert render_html(report) == render_html(report)


def test_missing_and_empty_parts() -> None:
    report = make_report()
    evil = '<script>alert("x")</script> $5 & $6'
    after = report["after"]
    after["skills"].append({"id": "new_skill", "name": evil, "n": 12, "correct": 6, "accuracy": 0.5,
                            "ci_low": 0.25, "ci_high": 0.75, "unparsed": 0, "alone": {}})  # only measured after
    # every output unparsed: 7 items, all wrong, all format failures
    after["skills"][0] |= {"n": 7, "correct": 0, "accuracy": 0.0, "ci_low": 0.0, "ci_high": wilson(0, 7)[1],
                           "unparsed": 7}
    report |= {"training": None, "diagnosis": None, "regressions": [], "timings": {}, "config": {"x": evil}}
    for d in report["deltas"]["skills"]:
        d["flag"] = "" if d["flag"] == "regression" else d["flag"]
    report["deltas"]["by_k"] = []
    report["before"]["by_k"] = []

    html = render_html(report)
    assert "<script" not in html and "&lt;script&gt;" in html  # escaped in table, plot and config
    assert 'data-skill="new_skill"' in html and 'class="regression"' not in html
    assert "No significant regressions." in html and "No training in this run." in html
    assert ">7 unparsed (100.0%)<" in html
    assert html.count("<svg") == 3  # no training plot

    bare = render_html({"skillgap_version": "0.1.0", "before": None, "after": None, "deltas": {}, "mixture": None,
                        "training": {"log": []}})
    for section in SECTIONS:
        assert f'id="{section}"' in bare
    assert "<svg" not in bare and "No training in this run." in bare and "No skills measured." in bare


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("headless Chromium is needed for the report page test: apt-get install chromium")
    return path


def _run_chromium(browser: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={home / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND", *args]
    p = subprocess.run(cmd, env=os.environ | {"HOME": str(home)}, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr[-3000:]}"
    return p


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    html_path = write_report(make_report(), tmp_path / "out")
    home = tmp_path / "home"
    home.mkdir()
    dom = _run_chromium(browser, home, f"--log-net-log={tmp_path / 'net.json'}", "--dump-dom",
                        html_path.as_uri()).stdout
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    assert len(re.findall(r"<svg\b", dom)) >= 4
    assert re.search(r'<tr data-skill="mul_table" class="regression">', dom)
    assert all(f'data-skill="{sid}"' in dom for sid in SKILLS)
    assert '<b id="n-regressions">1</b>' in dom
    # the diagnosis: the gaps targeting spent on, weakest first, with mastery and the share of examples per gap
    gaps = re.findall(r'<tr data-gap="(\w+)">(.*?)</tr>', dom, re.S)
    assert [g for g, _ in gaps] == ["paren_order", "sub_borrow"]
    assert "12.0%" in gaps[0][1] and "48.0%" in gaps[0][1] and "55%" in gaps[0][1]
    assert "Missing skills (joint diagnosis)" in dom and "a + b" in dom
    assert _page_requests(tmp_path / "net.json") == set()

    # The same check on a page that does load a remote image sees the request: the detector works.
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<html><body><img src="https://example.invalid/pixel.png">x</body></html>')
    _run_chromium(browser, home, f"--log-net-log={tmp_path / 'leaky.json'}", "--dump-dom", leaky.as_uri())
    assert _page_requests(tmp_path / "leaky.json") == {"https://example.invalid/pixel.png"}

    png = tmp_path / "report.png"
    _run_chromium(browser, home, f"--screenshot={png}", "--window-size=1280,2400", html_path.as_uri())
    assert png.exists() and png.stat().st_size > 10_000
    _assert_rendered(png)
    if os.environ.get("SKILLGAP_ARTIFACTS"):
        out = Path(os.environ["SKILLGAP_ARTIFACTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, out / "report.png")


def _page_requests(netlog: Path) -> set[str]:
    """Network URLs the page itself asked for, from Chromium's net log.

    Chromium's own background services (time sync, spell-check dictionaries...) also show up in
    the log, but only requests made on behalf of a file:// page carry a file:// isolation key.
    """
    events = json.loads(netlog.read_text())["events"]
    return {p["url"] for e in events if (p := e.get("params") or {}).get("url", "").startswith(("http:", "https:"))
            and str(p.get("network_isolation_key", "")).startswith("file://")}


def _assert_rendered(png: Path) -> None:
    """The screenshot shows the page, plots included: the regression red appears in it."""
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (1280, 2400)
        rgb = im.convert("RGB").resize((320, 600))
        colours = rgb.getcolors(maxcolors=1 << 16) or []
    reds = sum(n for n, (r, g, b) in colours if r > 170 and g < 90 and b < 90)
    assert len(colours) > 50 and reds > 20, (len(colours), reds)


def test_a_score_without_its_interval_is_an_error_not_a_blank() -> None:
    """The page reads a typed schema: a measured score missing a key fails in Python before any HTML is made."""
    report = make_report()
    del report["after"]["skills"][1]["ci_high"]
    with pytest.raises(KeyError, match="ci_high"):
        render_html(report)
    report = make_report()
    del report["mixture"]["order"]
    with pytest.raises(KeyError, match="order"):
        render_html(report)


def test_a_skillmix_page_missing_a_number_is_an_error_not_a_dash() -> None:
    from jinja2.exceptions import UndefinedError

    from skillgap.report import render_skillmix

    result = {"run_id": "skillmix-abc", "student": "hf:student", "judge": "openai:judge", "n_skills": 1, "n_topics": 1,
              "config": {"rounds": 1, "grading_runs": 1, "seed": 0}, "draws": [],
              "by_k": [], "skills": [{"skill": "metaphor", "n": 2, "ci": [0.1, 0.9]}]}  # no "rate"
    with pytest.raises(UndefinedError, match="rate"):
        render_skillmix(result)
