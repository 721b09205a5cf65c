"""The Python API: `import skillgap` stays light, no exported name is a module, and the README's ten lines run the
whole loop (measure -> find_gaps -> build_mixture -> finetune -> measure -> compare) on a tiny model."""

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import skillgap
from skillgap import VerifyConfig, compare, find_gaps
from skillgap.suites import active_skills, load_suite

ROOT = Path(__file__).resolve().parents[1]

# The README's Python API block, verbatim (the test runs the block itself where README.md has one).
LOOP = """\
from skillgap import (DataConfig, Model, Request, TrainConfig, build_mixture, compare, find_gaps, finetune,
                      load_items, measure)

test = DataConfig(suite="arith", split="test", limit=100)        # measured before and after: the same items
sample = DataConfig(suite="arith", split="train", limit=100)     # diagnosed on training items, never test items
pool = load_items(DataConfig(suite="arith", split="train", limit=4000)).items  # what targeting selects from
with Model("smollm2-135m") as model:                             # loaded once, kept across calls (as vLLM's LLM)
    before = measure(model, test)                                # a Profile: accuracy per skill and by k
    gaps = find_gaps(model, sample)                              # the missing skills, all fitted jointly
    mixture = build_mixture("stat-sel", Request(gaps, pool, budget=512))  # uniform if the evidence is thin
    result = finetune(model, mixture.items, TrainConfig(), "out/")  # LoRA; result.weights: the adapter folder
    after = measure(model.finetuned(result), test)               # the same items, with the adapter
comparison = compare(before, after)                              # paired: exact McNemar per skill, Holm
print(comparison["overall"]["delta"], comparison["improved"], comparison["regressions"])
"""

# The same lines at test size: each text below occurs in LOOP as often as said, so an edit of the block that
# dodges the swap fails here instead of running for an hour.
SMALL = [("limit=100)", "limit=12)", 2), ("limit=4000)", "limit=300)", 1), ("budget=512)", "budget=16)", 1),
         ("TrainConfig()", "TrainConfig(max_steps=2, batch_size=8, lora_r=2)", 1)]


def readme_block() -> str | None:
    """The code between `<!-- api -->` and `<!-- /api -->` in README.md, if the README has the block."""
    found = re.search(r"<!-- api -->\s*```python\n(.*?)```\s*<!-- /api -->", (ROOT / "README.md").read_text(), re.S)
    return found.group(1) if found else None


def at_test_size(code: str, model: str) -> str:
    """`code` on `model`, with the sizes of `SMALL`."""
    for old, new, times in [('"smollm2-135m"', repr(model), 1), *SMALL]:
        assert code.count(old) == times, (old, code.count(old))
        code = code.replace(old, new)
    return code


def test_the_readme_lines_run_the_whole_loop_on_a_tiny_model(tmp_path, monkeypatch):
    """A from-scratch model with the suite's own words answers in numbers, wrong ones: there are gaps to target."""
    from skillgap.models.scratch import scratch_model

    code = readme_block() or LOOP
    assert code == LOOP, "README.md's <!-- api --> block and tests/test_api.py's LOOP differ: keep them equal"
    model = scratch_model("scratch-tiny", "arith")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(at_test_size(code, str(model)), ns)  # noqa: S102: our own lines, as a user runs them
    before, after, comparison, mixture, result = (ns[k] for k in ("before", "after", "comparison", "mixture", "result"))
    measured = {s for r in before.records for s in r["skills"]}
    assert {s.id for s in before.skills} == {s.id for s in after.skills} == measured  # every skill of the items
    gaps = ns["gaps"]  # 12 diagnosed items are too few to name gaps: said, and stat-sel trains on uniform examples
    assert gaps.method == "joint" and "too few" in gaps.fallback
    assert set(gaps.weights) <= set(active_skills(load_suite("arith")).ids)
    assert len(mixture.items) == 16 and mixture.strategy == "uniform" and "fell back" in mixture.notes["fallback"]
    test_ids = [r["id"] for r in before.records]
    assert len(test_ids) == 12 and sorted(test_ids) == sorted(r["id"] for r in after.records)  # the same items
    assert not set(test_ids) & {it.id for it in mixture.items}  # never trained on a test item
    assert comparison["test"] == "mcnemar-exact" and comparison["overall"]["n"] == 12  # paired, item by item
    assert {d["id"] for d in comparison["skills"]} == measured
    assert result.method == "full" and result.steps == 2  # from scratch: full fine-tuning (TrainConfig.resolved)
    assert (Path(result.weights) / "config.json").is_file()
    assert after.model != before.model  # measured with the adapter, not the base model again
    assert not ns["model"].pool.backends  # the handle freed what it loaded


def test_a_model_handle_loads_its_model_once_across_measurements(tmp_path, tiny_model_dir):
    from skillgap import DataConfig, EvalConfig, Model, measure

    ev = EvalConfig(max_new_tokens=4)
    with Model(str(tiny_model_dir), runs_dir=tmp_path / "runs") as model:
        first = measure(model, DataConfig(suite="arith", limit=4), ev)
        loaded = list(model.pool.backends.values())
        second = measure(model, DataConfig(suite="arith", limit=4, seed=1), ev)
        assert list(model.pool.backends.values()) == loaded and len(loaded) == 1  # the same backend, not reloaded
    assert first.run_id != second.run_id and not model.pool.backends
    assert compare(first, second, VerifyConfig(paired=False)) == compare(first.to_dict(), second.to_dict(),
                                                                          VerifyConfig(paired=False))
    assert find_gaps(first, diagnosis="count").weights == {s: float(n) for s, n in first.missing.items()}
    assert find_gaps(first).method == "joint" and "too few" in find_gaps(first).fallback  # 4 items


def _submodules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(skillgap.__path__, "skillgap.")]


def test_no_exported_name_is_a_module_even_after_every_submodule_is_imported():
    """`from skillgap import TrainConfig, train` once returned the module `train`: loading `TrainConfig` bound the
    submodule onto the package, over the lazy name."""
    for name in _submodules():
        if not name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(name)
    modules = {name.split(".")[1] for name in _submodules()}
    assert not set(skillgap.__all__) & modules
    for name in skillgap.__all__:
        value = getattr(skillgap, name)
        assert not isinstance(value, type(skillgap)), f"skillgap.{name} is a module"
        assert getattr(importlib.import_module(skillgap._LAZY[name]), name) is value


def test_type_checkers_see_the_exported_names():
    """The TYPE_CHECKING imports name what `__getattr__` serves, from the same modules."""
    tree = ast.parse((ROOT / "src" / "skillgap" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {alias.name: imp.module for imp in block.body for alias in imp.names}
    assert seen == skillgap._LAZY


def test_import_skillgap_and_its_names_stay_free_of_torch():
    code = ("import sys, skillgap\n"
            "for name in skillgap.__all__: getattr(skillgap, name)\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'peft', 'trl', 'vllm', "
            "'ray'})\n"
            "assert not heavy, heavy\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_an_unknown_name_suggests_the_close_one():
    try:
        skillgap.mesure  # noqa: B018
    except AttributeError as e:
        assert "Did you mean 'measure'" in str(e)
    else:
        raise AssertionError("skillgap.mesure did not raise")
