"""Recipe: train on an online mixture (`skillgap train --mixture skill-it`), then profile the result.

    policy  = make_policy(mixture, skills, graph)        # skill-it | random | stratified | curriculum
    stream  = MixtureStream(policy, per-skill training items, seed)
    weights = train(model, stream, val)                  # every eval: policy.update(per-skill answer loss)
                                                         # every round: the stream takes policy.weights()
    profile(model + weights, test items)                 # -> profile.json (+ per-skill answer loss)

Writes `mixture.jsonl` (one line per round: step and per-skill weights), `val_loss.jsonl`, the
weights, `train_result.json` and `profile.json` into the output directory.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, load_items, source, suite_of, train_file
from skillgap.errors import ConfigError, unknown_name
from skillgap.formats import read_items
from skillgap.graph import SkillsGraph, load_graph, parse_rows
from skillgap.items import Item
from skillgap.models import ModelConfig
from skillgap.profile import Profile
from skillgap.recipes.profile import EvalConfig, profile, write_json
from skillgap.scoring import answer_scores
from skillgap.skills import SkillSet
from skillgap.store import fingerprint
from skillgap.suites import active_skills, validation_items
from skillgap.target.online import POLICIES, MixtureStream, make_policy, natural_proportions, reachable, skill_sources
from skillgap.train import TrainConfig, TrainResult, train
from skillgap.verify import assert_disjoint, prompt_key


TEST_LIMIT = 500  # test items profiled after training when the data gives no --limit


@dataclass(frozen=True)
class MixConfig:
    """An online mixture and its knobs (Skill-it's η, round length T and window)."""

    mixture: str = field(default="skill-it", metadata={
        "help": "skill-it | random | stratified | curriculum: re-weight skills while training (needs --steps)"})
    graph: str | None = field(default=None, metadata={
        "help": "skills graph: a JSON file from `skillgap graph`, or rows such as '100/110/001' (default: the "
                "suite's, else its prerequisites)"})
    eta: float | None = field(default=None, metadata={  # the paper's 0.5 LEGO, 0.1 Addition
        "help": "Skill-it learning rate (default: the suite's, else 0.5)"})
    window: int = field(default=3, metadata={"help": "evaluations per update"})
    round_steps: int | None = field(default=None, metadata={  # T, on an evaluation
        "help": "steps per round T, a multiple of --eval-every (default: a sixth of --steps)"})
    val_per_skill: int = field(default=100, metadata={
        "help": "validation items per skill for the per-skill loss"})
    # The training pool and replay share are TargetConfig's flags (--train-data, --replay), passed on.
    replay: float = 0.0  # share of every draw in the natural proportions (Replay)
    train_data: str | None = None  # a pool file to draw from instead of the suite's generator
    train_format: str = "auto"  # for train_data, as DataConfig.format
    train_fields: tuple[tuple[str, str], ...] = ()  # for train_data, as DataConfig.fields

    def check(self) -> None:
        if self.mixture not in POLICIES:
            raise unknown_name("mixture", self.mixture, list(POLICIES))
        if self.window < 1 or self.val_per_skill < 1 or (self.round_steps is not None and self.round_steps < 1):
            raise ConfigError("--window, --val-per-skill and --round-steps must be at least 1.")
        if not 0 <= self.replay < 1:
            raise ConfigError(f"--replay is a share in [0, 1), got {self.replay}.")
        if self.eta is not None and not self.eta > 0:
            raise ConfigError(f"--eta must be positive, got {self.eta}.")
        if self.train_data:
            read_items(self.train_data, self.train_format, dict(self.train_fields))  # fails as file:line: field


def default_graph(skills: SkillSet, suite: Any) -> SkillsGraph:
    """The suite's own graph (the paper's, for LEGO and Addition), else the prerequisite edges plus the diagonal."""
    rows = getattr(suite, "graph", None)
    if rows:  # over the suite's whole inventory; a restricted suite keeps its skills' rows and columns
        full = parse_rows(rows, suite.skills.ids)  # type: ignore[attr-defined]
        at = [full.skills.index(s) for s in skills.ids]
        return replace(full, skills=tuple(skills.ids), matrix=tuple(tuple(full.matrix[i][j] for j in at) for i in at))
    ids = skills.ids
    matrix = tuple(tuple(1.0 if i == j or a in skills[b].prerequisites else 0.0 for j, b in enumerate(ids))
                   for i, a in enumerate(ids))
    return SkillsGraph(tuple(ids), matrix, "prerequisites")


def round_steps_for(mc: MixConfig, tc: TrainConfig) -> int:
    if mc.round_steps:
        return mc.round_steps
    return max(tc.eval_every, tc.max_steps // 6 // tc.eval_every * tc.eval_every)


@dataclass
class Online:
    """An online mixture ready to train on: its stream, the validation sets that steer it, its round length."""

    stream: MixtureStream
    val: dict[str, list[Item]]
    rounds: int
    eta: float
    graph: SkillsGraph

    def describe(self, mc: MixConfig) -> str:
        return (f"{mc.mixture}: rounds of {self.rounds} steps, eta {self.eta}, window {mc.window}; initial weights "
                + ", ".join(f"{s} {w:.2f}" for s, w in self.stream.policy.weights().items()))

    def served(self, n: int) -> list[Item]:
        """The first `n` examples the stream gave: it is deterministic in its seed and its recorded weight changes,
        so replaying it after training lists what training read."""
        return list(itertools.islice(iter(self.stream), n))


def check_online(data: DataConfig, mc: MixConfig, tc: TrainConfig) -> None:
    if data.data and not mc.train_data:
        raise ConfigError("With --data (the test items), also give --train-data (the pool the mixture draws from).")
    if tc.max_steps <= 0:
        raise ConfigError("An online mixture is an endless stream: give --steps N.")
    mc.check()
    rounds = round_steps_for(mc, tc)
    if rounds % tc.eval_every:
        raise ConfigError(f"--round-steps {rounds} must be a multiple of --eval-every {tc.eval_every}.")


def build_online(data: DataConfig, mc: MixConfig, tc: TrainConfig, test_items: list[Item],
                 skills: SkillSet | None) -> Online:
    """The policy over the skills, its per-skill training sources and validation sets: a file pool's held-out
    items (by id and by text), or the suite's validation split. Refuses a pool or a stream that holds a test item,
    before any model work."""
    suite = None
    pool: list[Item] = []
    if mc.train_data:
        pool = load_items(train_file(data, mc.train_data, mc.train_format, mc.train_fields))[0]
        assert_disjoint(pool, test_items, f"--train-data {mc.train_data}", source(data))  # training and validation
        ids = list(skills.ids) if skills else sorted({s for it in pool for s in it.skills})
        skills = skills or SkillSet.from_dicts({"id": s} for s in ids)
        held = {s: [it for it in pool if s in it.skills][: mc.val_per_skill] for s in ids}
        ids_held = {it.id for v in held.values() for it in v}
        texts_held = {prompt_key(it) for v in held.values() for it in v}
        pool = [it for it in pool if it.id not in ids_held and prompt_key(it) not in texts_held]  # by id and text
        val = {s: v for s, v in held.items() if v}
    else:
        suite = suite_of(data)
        skills = active_skills(suite)
        # the suite's validation split: no training stream and no test item can share a problem with it
        val = {s: validation_items(suite, s, mc.val_per_skill, data.seed) for s in skills.ids}
    graph = load_graph(mc.graph, skills.ids) if mc.graph else default_graph(skills, suite)
    eta = mc.eta if mc.eta is not None else getattr(suite, "eta", 0.5)
    rounds = round_steps_for(mc, tc)
    policy = make_policy(mc.mixture, skills.ids, graph, natural_proportions(skills.ids, suite, pool), eta,
                         mc.window, every=rounds // tc.eval_every, replay=mc.replay)
    sources = skill_sources(suite, pool, data.seed)
    if suite is not None:  # a file pool is checked whole above; a suite's stream up to what training can read
        assert_disjoint(reachable(sources, skills.ids, tc.max_steps * tc.batch_size * tc.grad_accum), test_items,
                        f"the {mc.mixture} stream of suite {data.suite}", source(data))
    # the pool by content: an edited --train-data file under the same path is another training
    sources_key = f"{mc.train_data}:{fingerprint([it.to_dict() for it in pool])}" if mc.train_data else data.describe()
    return Online(MixtureStream(policy, sources, seed=data.seed, sources_key=sources_key), val, rounds, eta, graph)


def online_recipe(model: ModelConfig, data: DataConfig, mc: MixConfig, tc: TrainConfig, ev: EvalConfig,
                  output_path: str | Path, runs_dir: str | Path = "runs",
                  console: Console | None = None) -> tuple[TrainResult, Profile]:
    """Train on the online mixture, then profile the result on `data`'s test items (TEST_LIMIT of them when `data`
    sets no limit)."""
    console = console or Console(stderr=True)
    tc = tc.resolved(model)  # --method auto: full fine-tuning for a from-scratch model
    if data.limit is None:
        data = replace(data, limit=TEST_LIMIT)
    for cfg in (model, data, tc, ev):
        cfg.check()
    check_online(data, mc, tc)
    test_items, skills, _ = load_items(data, ev.grader, check=True)  # graded after training: checked before it
    online = build_online(data, mc, tc, test_items, skills)
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    write_json({"model": model.to_dict(), "data": asdict(data), "mixture": asdict(mc) | {
        "eta": online.eta, "round_steps": online.rounds, "graph": online.graph.to_dict()}, "train": asdict(tc),
        "eval": asdict(ev)}, out / "config.json")
    console.print(online.describe(mc))

    result = train(model, [], tc, out, val=online.val, console=console, stream=online.stream,
                   round_steps=online.rounds)

    trained = result.as_model(model)
    prof = profile(trained, data, ev, runs_dir, console=console)
    by_skill: dict[str, list[Item]] = {}
    for it in test_items:
        for s in it.skills:
            by_skill.setdefault(s, []).append(it)
    write_json(prof.to_dict() | {"answer_loss": final_answer_loss(trained, by_skill), "config": {
        "model": trained.to_dict(), "data": asdict(data), "eval": asdict(ev)}}, out / "profile.json")
    return result, prof


def final_answer_loss(model: ModelConfig, items: dict[str, list[Item]]) -> dict[str, float]:
    """Per-skill answer loss of the trained model on the test items (Skill-it's loss metric)."""
    from skillgap.models.hf import load_merged

    net, tok = load_merged(model)
    return {s: round(v["loss"], 5) for s, v in answer_scores(net, tok, items, bool(tok.chat_template)).items()}
