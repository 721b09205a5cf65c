"""`skillgap skillmix`: the Skill-Mix evaluation (see `skillgap.skillmix`) as a resumable run.

For each generation round: the student answers the first turn for every draw, then the second turn; the
judge grades each final text `grading_runs` times (independent samples). Every draw is its own sample: the
seeds come from `seed` and the round, and a draw that repeats an earlier draw's prompt (about 37 of 100 at
k = 1 with the released 10 skills x 10 topics) gets its own seed from `Teacher.complete`, so its text and
its grades are separate generations and cache entries. Every student and judge call goes through the
teacher cache, so a killed run loses no finished call; the graded draws are committed to the run store (one
item per draw: its best text, Skill Fraction and status), and the aggregates are written to `output_path`
(JSON) and beside it as an HTML page.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap import skillmix as mix
from skillgap.errors import ConfigError, unknown_name
from skillgap.grade import Grade
from skillgap.items import Item, Record
from skillgap.models import ModelConfig
from skillgap.report import render_skillmix
from skillgap.store import RunStore, fingerprint
from skillgap.teacher import Cache, Teacher, seed_for


@dataclass(frozen=True)
class SkillMixConfig:
    """What is drawn, how often it is generated and graded. The paper: 3 rounds x 3 grading runs, T = 0.7."""

    skills: str = field(metadata={  # the reference's skills.csv
        "help": "skills with a definition and an example: the reference's skills.csv (LeoYu/skill-mix) or a JSONL of "
                "{skill, definition, example}"})
    topics: str = field(metadata={"help": "topics, one a line (the reference's topics.txt)"})
    k: tuple[int, ...] = field(default=(1, 2, 3), metadata={
        "items": "numbers of skills", "example": "1,2,3", "help": "numbers of skills per text"})
    n: int = field(default=100, metadata={"help": "draws per k"})
    rounds: int = field(default=3, metadata={  # each metric takes the best round
        "help": "generation rounds, best of"})
    grading_runs: int = field(default=3, metadata={"help": "judge samples per text, majority per point"})
    filter_names: bool = field(default=False, metadata={
        "help": "zero a skill's point when its name appears verbatim in the text"})
    temperature: float = field(default=0.7, metadata={"help": "student and judge"})
    max_new_tokens: int = field(default=512, metadata={"help": "the student's, per turn"})
    judge_max_new_tokens: int = field(default=512, metadata={"help": ""})
    judge_retries: int = field(default=1, metadata={  # with the reason
        "help": "re-asks after a table that does not parse"})
    judge_format: str = field(default="table", metadata={
        "choices": ("table", "json"),
        "help": "table: the reference's rubric table (default) | json: the points as JSON, which an endpoint that "
                "constrains decoding enforces, so a weak judge's replies still parse"})
    seed: int = field(default=0, metadata={"help": "seed of the draws"})

    def check(self) -> None:
        if not self.k or any(k < 1 for k in self.k):
            raise ConfigError(f"--k must list numbers of skills of at least 1, got {','.join(map(str, self.k))}.")
        for name in ("n", "rounds", "grading_runs", "max_new_tokens", "judge_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if self.judge_format not in ("table", "json"):
            raise unknown_name("judge format", self.judge_format, ["table", "json"])
        if self.judge_retries < 0 or self.temperature < 0:
            raise ConfigError("--judge-retries and --temperature must not be negative.")
        if self.rounds > 1 and self.temperature == 0:
            raise ConfigError(f"--rounds {self.rounds} at --temperature 0 would repeat one greedy text; "
                              "sample (the paper: 0.7) or use --rounds 1.")


def skillmix(student: ModelConfig, judge: ModelConfig, cfg: SkillMixConfig, output_path: str | Path,
             runs_dir: str | Path = "runs", cache: Cache | None = None, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    cfg.check()
    student.check()
    judge.check()
    skills = mix.load_skills(cfg.skills)
    topics = mix.load_topics(cfg.topics)
    by_name = {s.name: s for s in skills}
    tasks = [t for k in cfg.k for t in mix.sample_tasks(list(by_name), topics, k, cfg.n, cfg.seed)]
    writer = Teacher(student, cache, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
    grader = Teacher(judge, writer.cache, max_new_tokens=cfg.judge_max_new_tokens, retries=cfg.judge_retries,
                     temperature=cfg.temperature)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("skills", "topics")}  # files: by content
    identity = {"kind": "skillmix", "student": writer.identity, "judge": grader.identity,
                "inventory": [asdict(s) for s in skills], "topic_list": topics} | settings
    run_id = f"skillmix-{fingerprint(identity)[:12]}"
    store = RunStore(runs_dir)
    try:
        session = store.open_run(run_id, "skillmix", writer.identity, f"skillmix:{Path(cfg.skills).name}",
                                 cfg.seed, len(tasks), identity)
        per_round: list[list[mix.MixGrade]] = []
        for r in range(cfg.rounds):
            console.print(f"skillmix round {r + 1}/{cfg.rounds}: {len(tasks)} draws, k = {','.join(map(str, cfg.k))}")
            per_round.append(grade_round(tasks, by_name, writer, grader, cfg, r))
        grades = [mix.best_of([rnd[i] for rnd in per_round]) for i in range(len(tasks))]
        store.add(run_id, session, [(i, _record(t, g, by_name)) for i, (t, g) in enumerate(zip(tasks, grades))])
        result = {"run_id": run_id, "student": writer.identity, "judge": grader.identity, "config": asdict(cfg),
                  "n_skills": len(skills), "n_topics": len(topics)} | mix.aggregate(tasks, grades)
        result["overall"] = {"accuracy": _mean([g.metrics["full_marks"] for g in grades if g.status == "ok"])}
        result["draws"] = [{"id": t.id, "k": t.k, "skills": list(t.skills), "topic": t.topic, "status": g.status,
                            "points": list(g.points) if g.points else None, "metrics": g.metrics, "text": g.answer,
                            "rounds": [{"status": rnd[i].status, "text": rnd[i].answer,
                                        "points": list(rnd[i].points) if rnd[i].points else None,
                                        "runs_parsed": rnd[i].runs_parsed} for rnd in per_round]}
                           for i, (t, g) in enumerate(zip(tasks, grades))]
        store.finish(run_id, {k: v for k, v in result.items() if k != "draws"})
    finally:
        store.close()
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    out.with_suffix(".html").write_text(render_skillmix(result))
    console.print(f"student calls made {writer.calls} (cached {writer.hits}); judge calls made {grader.calls} "
                  f"(cached {grader.hits})")
    return result


def grade_round(tasks: list[mix.MixTask], by_name: dict, writer: Teacher, grader: Teacher, cfg: SkillMixConfig,
                r: int) -> list[mix.MixGrade]:
    """One generation round: both student turns for every draw, then every grading run of every text; repeated
    draws are sampled (and graded) once each, with seeds derived from --seed, the round and the repeat."""
    seed = seed_for("skillmix", cfg.seed, r)
    turns = [mix.generation_turns(t, by_name) for t in tasks]
    first = [[{"role": "user", "content": a}] for a, _ in turns]
    replies = writer.complete(first, cfg.temperature, seed)
    second = [c + [{"role": "assistant", "content": rep}, {"role": "user", "content": b}]
              for c, rep, (_, b) in zip(first, replies, turns)]
    texts = [mix.answer_text(x) for x in writer.complete(second, cfg.temperature, seed)]
    chats = [[{"role": "user", "content": mix.grading_prompt(t, text, by_name, cfg.judge_format)}]
             for t, text in zip(tasks, texts)]
    parse = mix.parse_points_json if cfg.judge_format == "json" else mix.parse_points
    parsers = [lambda reply, t=t: parse(reply, t) for t in tasks]
    runs = [judge_run(grader, chats, parsers, tasks, cfg.judge_format, seed_for("skillmix-judge", cfg.seed, r, g))
            for g in range(cfg.grading_runs)]
    out = []
    for i, (t, text) in enumerate(zip(tasks, texts)):
        replies_i = [run[i] for run in runs]
        voted = mix.vote([rep.value if rep.status == "ok" else None for rep in replies_i])
        parsed = sum(rep.status == "ok" for rep in replies_i)
        if voted is None:
            why = "; ".join(sorted({rep.error for rep in replies_i}))
            out.append(mix.MixGrade(None, text, f"no grading run parsed: {why}", "judge_error", None, {}, 0))
            continue
        points = mix.finalize(voted, t, text, cfg.filter_names)
        m = mix.metrics(points, t.k)
        explanation = next(rep.text for rep in replies_i if rep.status == "ok")
        out.append(mix.MixGrade(m["skill_fraction"], text, explanation, "ok", tuple(points), m, parsed))
    return out


def judge_run(grader: Teacher, chats: list, parsers: list, tasks: list[mix.MixTask], fmt: str, seed: int) -> list:
    """One grading run of every text; in JSON format one call per k, each with the schema of k + 3 points."""
    if fmt != "json":
        return grader.ask(chats, parsers, seed=seed)
    out: list = [None] * len(chats)
    for k in sorted({t.k for t in tasks}):
        idx = [i for i, t in enumerate(tasks) if t.k == k]
        for i, rep in zip(idx, grader.ask([chats[i] for i in idx], [parsers[i] for i in idx],
                                          schema=mix.points_schema(k), seed=seed)):
            out[i] = rep
    return out


def _record(t: mix.MixTask, g: mix.MixGrade, by_name: dict) -> Record:
    item = Item(t.id, "", t.skills, mix.generation_turns(t, by_name)[0], split="test",
                metadata={"suite": "skillmix", "topic": t.topic, "k": t.k})
    explanation = json.dumps({"points": list(g.points) if g.points else None, "metrics": g.metrics,
                              "judge": g.explanation})
    return Record(item, g.answer, Grade(g.score, g.answer, explanation, g.status), 0)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None

