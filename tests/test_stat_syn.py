"""STAT-Syn (He et al., arXiv 2510.10023): the consistency filter on hand cases, the budget and the accounting
with a scripted backend, and the whole path against a real llama.cpp server and a real local model."""

from collections import Counter

import pytest

from skillgap.errors import ConfigError
from skillgap.grade import extract_number, format_number
from skillgap.items import Item
from skillgap.models import Generation, ModelConfig
from skillgap.skills import Skill, SkillSet
from skillgap.suites import load_suite
from skillgap.target import Request, build_mixture
from skillgap.target.stat_syn import (as_teacher, consistency_filter, majority, parse_question, seed_for, solutions,
                                      stat_syn)
from skillgap.teacher import Cache, Teacher

ADD = SkillSet((Skill("add", "Addition", "adding two whole numbers"),))
POOL = [Item(f"p{i}", str(a + b), ("add",), prompt=f"What is {a} + {b}?", split="train")
        for i, (a, b) in enumerate([(12, 7), (30, 5), (8, 9), (41, 3)])]


def _counts_add_up(notes):
    assert notes["questions_asked"] == notes["questions_kept"] + notes["questions_dropped"] \
        + notes["questions_unparsable"]
    assert notes["examples_agreeing"] == notes["examples_kept"] + notes["examples_over_quota"]


# --- the filter, by hand -------------------------------------------------------------------------------------


def test_consistency_filter_keeps_only_agreeing_solutions():
    sols = ["3 + 4 = 7. The answer is 7.", "It is 8.", "so 7 apples\n#### 7"]
    assert consistency_filter(sols) == ("7", [sols[0], sols[2]])
    assert majority(sols) == ("7", [0, 2])
    # Equal values in different forms agree.
    assert consistency_filter(["The answer is 1,000.", "#### 1000", "The answer is 999."]) \
        == ("1000", ["The answer is 1,000.", "#### 1000"])


def test_consistency_filter_ties_are_dropped():
    assert consistency_filter(["1", "2", "3"]) is None  # no two agree
    assert consistency_filter(["1", "2", "3"], min_agree=1) is None  # a three-way tie singles out nothing
    assert consistency_filter(["7", "8", "7", "8"]) is None  # 2-2: both reach min_agree, neither is a majority
    assert consistency_filter(["7", "8", "8", "7", "7"]) == ("7", ["7", "7", "7"])


def test_consistency_filter_unparsable_solutions_never_vote():
    assert consistency_filter(["no number", "none", "5"], min_agree=1) == ("5", ["5"])
    assert consistency_filter(["no number", "none", "5"]) is None
    assert consistency_filter(["no idea", "no idea", "no idea"], min_agree=1) is None


def test_consistency_filter_min_agree():
    assert consistency_filter(["5", "5", "5"], min_agree=3) == ("5", ["5", "5", "5"])
    assert consistency_filter(["5", "5", "6"], min_agree=3) is None
    assert consistency_filter(["5", "5", "6"], min_agree=2) == ("5", ["5", "5"])


def test_parse_question():
    assert parse_question("Problem: What is 2 + 3?\nSolution: 2 + 3 = 5") == "What is 2 + 3?"
    reply = "**New problem:** Sam has 4 pens.\nAnswer in pens: how many?\n\n**Answer:** 4"
    assert parse_question(reply) == "Sam has 4 pens.\nAnswer in pens: how many?"
    assert parse_question("") is None and parse_question("  42 \n") is None


# --- budget, ids and accounting, with a scripted backend ------------------------------------------------------


class Scripted:
    """A backend whose replies follow a script: question k is of kind KINDS[k % 4]; the j-th distinct seed
    a solve prompt is asked with gives sample j of that kind. Replies depend only on (chat, seed)."""

    identity = "scripted"
    batch_size = 4
    KINDS = ["all", "", "split", "two"]  # "": a reply with no question in it
    ANSWERS = {"all": [5, 5, 5], "two": [5, 6, 5], "split": [5, 6, 7]}

    def __init__(self):
        self.questions = 0
        self.seeds: dict[str, list[int]] = {}

    def generate(self, chats, max_new_tokens, temperature=0.0, seed=0, schema=None):
        out = []
        for chat in chats:
            text = chat[-1]["content"]
            if text.startswith("Question"):  # a solve prompt
                kind = text.split()[1]
                seen = self.seeds.setdefault(text, [])
                if seed not in seen:
                    seen.append(seed)
                out.append(Generation(f"Working. The answer is {self.ANSWERS[kind][seen.index(seed)]}.", 5))
            else:
                kind = self.KINDS[self.questions % 4]
                out.append(Generation(f"Question {kind} number {self.questions}?" if kind else "", 5))
                self.questions += 1
        return out


def test_budget_counts_examples_with_every_agreeing_solution(tmp_path):
    """Worked by hand (quota 4, 3 solutions, min_agree 2). Round 0 asks ceil(4/2) = 2 questions: "all"
    (3 examples) and one unparsable. Round 1 asks 1 ("split", dropped); round 2 asks 1 ("two": 2 agree,
    room for 1, the other is over quota)."""
    teacher = Teacher(ModelConfig(), Cache(tmp_path / "t.db"), backend=Scripted())
    m = build_mixture("stat-syn", Request({"add": 1}, POOL, budget=4, seed=0, skills=ADD, teacher=teacher))
    n = m.notes
    assert len(m.items) == 4
    assert {k: n[k] for k in ("questions_asked", "questions_unparsable", "questions_dropped", "questions_kept",
                              "questions_used", "examples_agreeing", "examples_kept", "examples_over_quota")} \
        == {"questions_asked": 4, "questions_unparsable": 1, "questions_dropped": 1, "questions_kept": 2,
            "questions_used": 2, "examples_agreeing": 5, "examples_kept": 4, "examples_over_quota": 1}
    _counts_add_up(n)
    assert n["short"] == {} and n["by_skill"]["add"]["examples_kept"] == 4
    assert sorted(it.id for it in m.items) == ["syn-add-s0-r0-q0000-a0", "syn-add-s0-r0-q0000-a1",
                                               "syn-add-s0-r0-q0000-a2", "syn-add-s0-r2-q0000-a0"]
    by_q = Counter(it.prompt for it in m.items)
    assert by_q == {"Question all number 0?": 3, "Question two number 3?": 1}
    assert all(it.answer == "5" and it.split == "train" and it.skills == ("add",) for it in m.items)
    assert n["sampling"] == {"n_solutions": 3, "min_agree": 2, "temperature": 0.7, "question_temperature": 0.8,
                             "max_rounds": 4, "max_new_tokens": 256}
    assert n["teacher"] == "scripted" and n["source"] == "teacher:scripted" and n["teacher_calls"] == 13
    # Deterministic: the same run again is the same set, straight from the cache.
    again = build_mixture("stat-syn", Request({"add": 1}, POOL, budget=4, seed=0, skills=ADD, teacher=teacher))
    assert [(it.id, it.completion) for it in again.items] == [(it.id, it.completion) for it in m.items]
    assert again.notes["teacher_calls"] == 0 and again.notes["cache_hits"] == 13


def test_the_teacher_sees_the_reference_questions_not_their_solutions(tmp_path):
    # `messages` items end with the assistant's worked solution: the teacher must be shown the user turn.
    class Recording(Scripted):
        def generate(self, chats, *args, **kwargs):
            asked.extend(c[-1]["content"] for c in chats)
            return super().generate(chats, *args, **kwargs)

    asked: list[str] = []
    pool = [Item(f"m{i}", "5", ("add",), messages=({"role": "user", "content": f"What is {i} + {5 - i}?"},
                                                   {"role": "assistant", "content": f"SOLUTION {i}: 5"}),
                 split="train") for i in range(3)]
    teacher = Teacher(ModelConfig(), Cache(tmp_path / "t.db"), backend=Recording())
    build_mixture("stat-syn", Request({"add": 1}, pool, budget=2, seed=0, skills=ADD, teacher=teacher))
    prompts = [a for a in asked if a.startswith("Here are math problems")]
    assert prompts and all("SOLUTION" not in a for a in prompts)
    assert all(f"Problem: What is {i} + {5 - i}?" in prompts[0] for i in range(3))


def test_the_quota_is_never_exceeded_and_shortfalls_are_reported(tmp_path):
    teacher = Teacher(ModelConfig(), Cache(tmp_path / "t.db"), backend=Scripted())
    m = stat_syn(Request({"add": 1}, POOL, budget=2, seed=1, skills=ADD, teacher=teacher))
    assert len(m.items) == 2 and m.notes["examples_over_quota"] == 1  # "all" gives 3; 2 fit
    assert len({it.id for it in m.items}) == 2
    m = stat_syn(Request({"add": 1}, POOL, budget=50, seed=2, skills=ADD, teacher=teacher), max_rounds=1)
    assert m.notes["short"] == {"add": 50 - len(m.items)} and len(m.items) < 50
    _counts_add_up(m.notes)
    # Two skills, one with no labelled pool items: each gets exactly its quota, ids unique across skills.
    m = build_mixture("stat-syn", Request({"add": 3, "sub": 1}, POOL, budget=8, seed=3, teacher=teacher))
    assert m.notes["quotas"] == {"add": 6, "sub": 2} and Counter(it.skills[0] for it in m.items) == m.notes["quotas"]
    assert len({it.id for it in m.items}) == 8 and all("~" not in it.id for it in m.items)
    _counts_add_up(m.notes)
    for skill, c in m.notes["by_skill"].items():
        _counts_add_up(c)


def test_settings_that_would_make_the_filter_vacuous_are_refused(tmp_path):
    teacher = Teacher(ModelConfig(), Cache(tmp_path / "t.db"), backend=Scripted())
    req = Request({"add": 1}, POOL, budget=2, skills=ADD, teacher=teacher)
    with pytest.raises(ConfigError, match="temperature"):
        stat_syn(req, temperature=0.0)
    with pytest.raises(ConfigError, match="min_agree"):
        stat_syn(req, n_solutions=3, min_agree=4)
    with pytest.raises(ConfigError, match="teacher"):
        stat_syn(Request({"add": 1}, POOL, budget=2, teacher=object()))


# --- against a real OpenAI-compatible server (llama.cpp on SmolLM2-135M) --------------------------------------


@pytest.fixture
def teacher(server, tmp_path):
    return Teacher(ModelConfig(model="smollm2", base_url=server), Cache(tmp_path / "t.db"), max_new_tokens=40)


@pytest.mark.slow
def test_samples_are_independent_and_the_filter_keeps_and_drops(teacher):
    """Same question, same seed: a server returns one sample. One seed per sample index: n different ones,
    and the filter keeps a question whose samples agree (10 + 5, wrongly, as 6) and drops one whose don't."""
    questions = ["What is 10 + 5?", "What is 17 * 23?"]
    chat = [{"role": "user", "content": questions[0]}]
    same = teacher.backend.generate([chat] * 2, 16, temperature=0.7, seed=0)
    assert same[0].text == same[1].text  # why one seed per sample is needed
    sols = solutions(teacher, questions, 3, 0.7, lambda j: seed_for("x", j))
    assert all(len(set(s)) == 3 for s in sols)  # every question's three samples differ
    verdicts = [majority(s) for s in sols]
    assert verdicts[1] is None  # 17 * 23: three different answers
    assert verdicts[0] is not None  # 10 + 5: two samples agree
    answer, good = verdicts[0]
    assert len(good) >= 2 and all(format_number(extract_number(sols[0][j])) == answer for j in good)


@pytest.mark.slow
def test_end_to_end_on_a_server_keeps_agreeing_solutions_and_accounts_for_every_question(server, teacher, tmp_path):
    req = Request({"add": 1}, POOL, budget=4, seed=0, skills=ADD, teacher=teacher)
    m = build_mixture("stat-syn", req)
    n = m.notes
    _counts_add_up(n)
    assert n["questions_kept"] >= 1 and n["questions_dropped"] >= 1  # both paths ran (seed 0 on this server)
    assert 1 <= len(m.items) <= 4 and n["examples_kept"] == len(m.items)
    assert n["teacher"] == teacher.identity and n["teacher_calls"] > 0
    assert n["sampling"]["n_solutions"] == 3 and n["sampling"]["temperature"] > 0
    by_q = {}
    for it in m.items:
        by_q.setdefault(it.metadata["question"], []).append(it)
        votes = Counter(a for a in it.metadata["answers"] if a is not None).most_common()
        assert len(it.metadata["answers"]) == 3 and votes[0][0] == it.answer  # the majority of all 3 samples
        assert votes[0][1] >= 2 and (len(votes) == 1 or votes[1][1] < votes[0][1])
        assert format_number(extract_number(it.completion)) == it.answer  # this solution agrees
        assert it.prompt and "The answer is" not in it.prompt  # the question alone, as the student sees it
    several = [its for its in by_q.values() if len(its) >= 2]
    assert several, "no question gave several examples"
    assert all(len({it.completion for it in its}) == len(its) for its in several)  # different solutions
    assert len({it.id for it in m.items}) == len(m.items)
    # Re-run on the same cache file with a fresh Teacher: no model call, the same set.
    fresh = Teacher(ModelConfig(model="smollm2", base_url=server), Cache(tmp_path / "t.db"), max_new_tokens=40)
    again = build_mixture("stat-syn", Request({"add": 1}, POOL, budget=4, seed=0, skills=ADD, teacher=fresh))
    assert again.notes["teacher_calls"] == 0 and fresh.calls == 0
    assert again.notes["cache_hits"] == n["teacher_calls"]
    assert [(it.id, it.completion) for it in again.items] == [(it.id, it.completion) for it in m.items]


# --- a plain local backend (transformers), wrapped ------------------------------------------------------------


def test_a_plain_local_backend_is_wrapped_and_samples_independently(tiny_model_dir):
    from skillgap.models import load_model

    backend = load_model(ModelConfig(str(tiny_model_dir), device="cpu"), batch_size=8)
    teacher = as_teacher(backend)
    assert isinstance(teacher, Teacher) and teacher.identity == backend.identity
    sols = solutions(teacher, ["What is 2 + 2?", "What is 3 + 3?"], 3, 0.7, lambda j: seed_for("hf", j), 8)
    assert all(len(set(s)) == 3 for s in sols)
    # Reproducible given the seeds: a fresh wrapper (empty in-memory cache) draws the same samples again.
    assert solutions(as_teacher(backend), ["What is 2 + 2?", "What is 3 + 3?"], 3, 0.7,
                     lambda j: seed_for("hf", j), 8) == sols
    m = stat_syn(Request({"add": 1}, POOL, budget=2, seed=0, skills=ADD, teacher=backend), max_rounds=1,
                 max_new_tokens=8)
    _counts_add_up(m.notes)
    assert m.notes["questions_asked"] >= 1 and m.notes["teacher"] == backend.identity


# --- the suite's generator ------------------------------------------------------------------------------------


def test_the_suite_path_says_what_it_is():
    suite = load_suite("arith")
    m = build_mixture("stat-syn", Request({"add_multi": 3, "round": 1}, [], budget=8, seed=0,
                                          skills=suite.skills, suite=suite))
    assert m.notes["source"] == "suite:arith" and m.notes["teacher"] is None
    assert m.notes["filter"] == "none (exact answers from the generator)"
    assert m.notes["quotas"] == {"add_multi": 6, "round": 2} and m.notes["examples_kept"] == 8 == len(m.items)
    assert "2510.10023" in m.notes["method"]


# --- from the command line ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_reaches_the_teacher_path_from_the_command_line(server, tmp_path, tiny_model_dir):
    """`skillgap train --strategy stat-syn --teacher M --teacher-base-url U` on a file pool: the teacher writes the
    training set (no generator for a file), the notes say so, and the trainer trains on it."""
    import json

    from conftest import run_cli
    from skillgap.items import read_jsonl, write_jsonl

    write_jsonl(load_suite("arith").generate("train", 40, seed=0), tmp_path / "pool.jsonl")
    (tmp_path / "p.json").write_text(json.dumps({"missing": {"add_1digit": 1}}))
    run_cli("train", "--model", str(tiny_model_dir), "--suite", "arith", "--train-data", "pool.jsonl", "--profile",
            "p.json", "--strategy", "stat-syn", "--diagnosis", "count", "--budget", "3", "--teacher", "smollm2", "--teacher-base-url", server,
            "--teacher-max-new-tokens", "40", "--teacher-cache", "t.db", "--max-steps", "1", "--train-batch-size", "2",
            "--eval-every", "0", "--device", "cpu", "--output-path", "out", cwd=tmp_path)
    notes = json.loads((tmp_path / "out" / "mixture.json").read_text())["notes"]
    assert notes["source"] == "teacher:openai:smollm2@" + server and notes["sampling"]["temperature"] > 0
    _counts_add_up(notes)
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert train and all(it.metadata["source"] == "stat-syn-teacher" and it.skills == ("add_1digit",) for it in train)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["teacher"] == notes["teacher"]
