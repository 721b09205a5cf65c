"""Recipe: estimate a skills graph (`skillgap graph`), or write and draw one given by hand.

    base   = model, optionally trained first on all skills (--pretrain-steps)
    for each skill i:
        train(base, a stream of skill i alone, --steps)      # the stream's callback measures
        after[i] = per-skill answer loss on validation items  #   every skill before and after
    A = normalise(before - after)   -> graph.json + graph.png

The normalisation is in `skillgap.graph`. Every training run is kept under
`<output>-runs/` and is skipped when re-run, so an interrupted estimation resumes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.console import Console

from skillgap.data import DataConfig, suite_of
from skillgap.errors import ConfigError
from skillgap.graph import SkillsGraph, from_losses, load_graph, write_graph
from skillgap.models import ModelConfig
from skillgap.suites import active_skills, validation_items
from skillgap.target.online import MixtureStream, Static, reachable, skill_sources
from skillgap.train import TrainConfig, read_log, train
from skillgap.verify import assert_disjoint

STEPS = 50  # steps of training on each skill alone, when the TrainConfig sets no max_steps


def graph_recipe(model: ModelConfig, data: DataConfig, tc: TrainConfig, output_path: str | Path,
                 given: str | None = None, pretrain_steps: int = 0, val_per_skill: int = 100,
                 runs_dir: str | Path = "runs", console: Console | None = None) -> tuple[SkillsGraph, Path]:
    """The graph `given` (drawn), else estimated: each skill trained alone for `tc.max_steps` (STEPS if unset)."""
    console = console or Console(stderr=True)
    tc = tc.resolved(model)  # --method auto: full fine-tuning for a from-scratch model
    if tc.max_steps <= 0:
        tc = replace(tc, max_steps=STEPS)
    if data.data:
        raise ConfigError("skillgap graph needs a suite (a generator per skill): give --suite.")

    suite = suite_of(data)
    inventory = active_skills(suite)
    ids = inventory.ids
    out = Path(output_path)
    if given:
        graph = load_graph(given, ids)
        graph.notes["inventory"] = inventory.to_dicts()  # saved with the skill set it is over
        return graph, write_graph(graph, out, f"skills graph of {suite.name} (given)")[1]

    work = out.with_name(out.stem + "-runs")
    val = {s: validation_items(suite, s, val_per_skill, data.seed) for s in ids}
    sources = skill_sources(suite, [], data.seed)
    # the losses measure what training did not show: no item the runs can read may be a validation item
    steps = max(tc.max_steps, pretrain_steps) * tc.batch_size * tc.grad_accum
    assert_disjoint(reachable(sources, ids, steps), [it for v in val.values() for it in v],
                    f"the training streams of suite {suite.name}", "validation items")

    def run(name: str, weights: dict[str, float], base: ModelConfig, steps: int) -> tuple[ModelConfig, list[dict]]:
        cfg = replace(tc, max_steps=steps, eval_every=steps, save_every=steps)
        stream = MixtureStream(Static(weights), sources, seed=data.seed, sources_key=data.describe())
        console.print(f"[bold]{name}[/bold]: {steps} steps")
        res = train(base, [], cfg, work / name, val=val, console=console, stream=stream, round_steps=steps)
        trained = res.as_model(base)
        return trained, read_log(work / name / "val_loss.jsonl")

    base = model
    if pretrain_steps > 0:
        if tc.method != "full":
            raise ConfigError("--pretrain-steps continues from fully trained weights: use --method full.")
        base, _ = run("pretrain", {s: 1.0 for s in ids}, model, pretrain_steps)
    before: dict[str, float] = {}
    after: dict[str, dict[str, float]] = {}
    for s in ids:
        _, losses = run(f"only-{s}", {x: float(x == s) for x in ids}, base, tc.max_steps)
        before, after[s] = losses[0]["loss"], losses[-1]["loss"]
    graph = from_losses(ids, before, after)
    graph.notes.update(steps=tc.max_steps, pretrain_steps=pretrain_steps, val_per_skill=val_per_skill,
                       model=base.model, inventory=inventory.to_dicts())
    return graph, write_graph(graph, out, f"skills graph of {suite.name} (estimated, {tc.max_steps} steps per skill)")[1]
