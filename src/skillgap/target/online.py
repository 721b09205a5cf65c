"""Online mixtures: the share of each skill in the training stream, decided while training runs.

A policy is a small pure object, the same interface for the method and its baselines:

    policy.weights()        -> {skill: probability}
    policy.update(losses)   # one evaluation: {skill: validation loss}

`skill-it` (Skill-it!, Chen et al. 2023; `skill_it.py`) moves weight towards skills whose
graph neighbours still have high loss. The baselines are those of the paper: `random` (the
data's natural proportions), `stratified` (uniform over skills) and `curriculum` (skills
admitted one round at a time in graph order). `MixtureStream` turns a policy and per-skill item
streams into the training stream; `skillgap.train` wires both into TRL through a public
TrainerCallback, and any plain PyTorch loop can do the same (see docs/skill-it.md).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from skillgap.errors import ConfigError, unknown_name
from skillgap.graph import SkillsGraph
from skillgap.items import Item
from skillgap.target.skill_it import SkillIt

POLICIES = ("random", "stratified", "curriculum", "skill-it")


class Policy(Protocol):
    def weights(self) -> dict[str, float]: ...

    def update(self, losses: dict[str, float]) -> None: ...


@dataclass
class Static:
    """Fixed proportions: `random` (natural proportions) and `stratified` (1/k each)."""

    proportions: dict[str, float]

    def weights(self) -> dict[str, float]:
        total = sum(self.proportions.values())
        return {s: p / total for s, p in self.proportions.items()}

    def update(self, losses: dict[str, float]) -> None:
        pass


@dataclass
class Curriculum:
    """Skills in graph order, one more admitted every `every` evaluations; uniform over those admitted."""

    order: list[str]
    every: int = 1
    seen: int = 0  # evaluations so far

    def weights(self) -> dict[str, float]:
        n = min(len(self.order), 1 + self.seen // self.every)
        return {s: (1 / n if i < n else 0.0) for i, s in enumerate(self.order)}

    def update(self, losses: dict[str, float]) -> None:
        self.seen += 1


@dataclass
class Replay:
    """Another policy with a fixed share of every draw in the natural proportions: the online form of a fixed
    set's replay (`skillgap.target.with_replay`), so skills the policy starves keep examples."""

    policy: Policy
    natural: dict[str, float]
    share: float

    def weights(self) -> dict[str, float]:
        w, total = self.policy.weights(), sum(self.natural.values())
        return {s: (1 - self.share) * p + self.share * self.natural[s] / total for s, p in w.items()}

    def update(self, losses: dict[str, float]) -> None:
        self.policy.update(losses)


def natural_proportions(skills: Sequence[str], suite: object | None, pool: Sequence[Item]) -> list[float]:
    """The `random` baseline's weights: the suite's own, else how often each skill labels the training items."""
    if suite is not None and getattr(suite, "proportions", None):  # over the whole inventory
        whole = suite.skills.ids  # type: ignore[attr-defined]
        return [float(suite.proportions[whole.index(s)]) for s in skills]  # type: ignore[attr-defined]
    items = list(pool) or (suite.generate("train", 1000, seed=0) if suite is not None else [])  # type: ignore[attr-defined]
    counts = {s: sum(s in it.skills for it in items) for s in skills}
    return [float(counts[s]) for s in skills] if any(counts.values()) else [1.0] * len(skills)


def make_policy(name: str, skills: Sequence[str], graph: SkillsGraph | None = None,
                proportions: Sequence[float] | None = None, eta: float = 0.5, window: int = 3,
                every: int = 1, replay: float = 0.0) -> Policy:
    """A policy by name. `every` is the round length in evaluations (Skill-it's T / eval interval); `replay`
    mixes that share of the natural proportions into its weights."""
    policy = _policy(name, skills, graph, proportions, eta, window, every)
    if not replay:
        return policy
    if not 0 < replay < 1:
        raise ConfigError(f"--replay is a share in [0, 1), got {replay}.")
    props = proportions if proportions is not None else [1.0] * len(skills)
    return Replay(policy, dict(zip(skills, map(float, props))), replay)


def _policy(name: str, skills: Sequence[str], graph: SkillsGraph | None, proportions: Sequence[float] | None,
            eta: float, window: int, every: int) -> Policy:
    if name == "random":
        props = proportions if proportions is not None else [1.0] * len(skills)
        if len(props) != len(skills):
            raise ConfigError(f"random: {len(props)} proportions for {len(skills)} skills.")
        return Static(dict(zip(skills, map(float, props))))
    if name == "stratified":
        return Static({s: 1.0 for s in skills})
    if name in ("curriculum", "skill-it"):
        if graph is None:
            raise ConfigError(f"--mixture {name} needs a skills graph: --graph FILE.json (from `skillgap graph`) "
                              "or rows such as '100/110/001'.")
        if list(graph.skills) != list(skills):
            raise ConfigError(f"The graph is over {list(graph.skills)}, the data over {list(skills)}.")
        if name == "curriculum":
            return Curriculum(graph.order(), every)

        return SkillIt(graph, eta=eta, window=window, every=every)
    raise unknown_name("mixture", name, list(POLICIES))


@dataclass
class MixtureStream:
    """The training stream: each example's skill drawn with the policy's current weights.

    Deterministic given the seed and the history of weight changes. `changes` records, for each
    change, the example index from which the new weights applied; a resumed run restores it,
    so replaying the examples a checkpoint already trained on draws them exactly as before.
    """

    policy: Policy
    sources: Callable[[str], Iterator[Item]]  # skill -> an endless stream of that skill's training items
    seed: int = 0
    changes: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (first example, weights)
    sources_key: str = ""  # what `sources` draw from (a suite, or a digest of a file pool): a training's fingerprint
    position: int = 0  # examples drawn by the latest iterator

    def __post_init__(self) -> None:
        if not self.changes:
            self.changes = [(0, self.policy.weights())]

    def refresh(self) -> dict[str, float]:
        """Call after `policy.update`: examples drawn from now on use the policy's new weights."""
        w = self.policy.weights()
        if w != self.changes[-1][1]:
            self.changes.append((self.position + 1, w))  # the example at `position` is already drawn
        return w

    def weights_at(self, index: int) -> dict[str, float]:
        return next(w for start, w in reversed(self.changes) if start <= index)

    def __iter__(self) -> Iterator[Item]:
        rng = random.Random(f"mixture/{self.seed}")
        streams: dict[str, Iterator[Item]] = {}
        i = 0
        while True:
            self.position = i
            w = self.weights_at(i)
            skills = [s for s, p in w.items() if p > 0]
            skill = rng.choices(skills, weights=[w[s] for s in skills])[0]
            if skill not in streams:
                streams[skill] = self.sources(skill)
            yield next(streams[skill])
            i += 1


def skill_sources(suite: object | None, pool: Sequence[Item], seed: int) -> Callable[[str], Iterator[Item]]:
    """Endless per-skill item streams: a suite's own stream, its generator in chunks, or the pool's items of that
    skill reshuffled each pass."""
    if suite is not None and hasattr(suite, "stream"):
        return lambda skill: suite.stream(skill, "train", seed)  # type: ignore[attr-defined]
    if suite is not None and hasattr(suite, "synthesize"):
        def chunks(skill: str) -> Iterator[Item]:
            for chunk in itertools.count():
                yield from suite.synthesize(skill, 256, seed=seed * 1_000_003 + chunk)  # type: ignore[attr-defined]

        return chunks

    def cycle(skill: str) -> Iterator[Item]:
        items = [it for it in pool if skill in it.skills]
        if not items:
            raise ConfigError(f"No training items carry skill {skill!r}; the mixture cannot draw it.")
        rng = random.Random(f"pool/{skill}/{seed}")
        while True:
            rng.shuffle(items)
            yield from items

    return cycle


def reachable(sources: Callable[[str], Iterator[Item]], skills: Sequence[str], n: int) -> list[Item]:
    """Every item a stream over `skills` can serve in its first `n` examples, whatever weights training gives it:
    each skill's source is read in order, so it serves at most its first `n` items. What a leak check needs before
    training, when the stream's choices are not known yet."""
    return [it for s in skills for it in itertools.islice(sources(s), n)]
