"""Skill inventories from files: YAML, JSON, CSV, labelled JSONL (the released GSM8K labels), MathCAMPS standards."""

import json

import pytest
from conftest import shared_data

from skillgap.errors import ConfigError, DataError
from skillgap.skills import load_inventory


def test_inventory_from_the_released_gsm8k_labels():
    inv = load_inventory(shared_data() / "math-skill-labels" / "gsm8k_test.jsonl")
    released = json.loads((shared_data() / "math-skill-labels" / "skill_lists.json").read_text())
    assert sorted(inv.ids) == sorted(released["labels_seen_in_question2skill"]["gsm8k"]["test"])
    assert len(inv) == 14 and inv["basic_arithmetics"].name == "Basic arithmetics"


def test_mathcamps_standards_as_an_inventory():
    inv = load_inventory(shared_data() / "mathcamps" / "standards.jsonl")
    k = inv["K.CC.C.7"]
    assert k.family == "K" and k.name == "Compare nums. btwn. 1 and 10" and "numerals" in k.description


def test_yaml_json_csv(tmp_path):
    (tmp_path / "s.yaml").write_text("skills:\n  - id: add\n    name: Addition\n  - id: carry\n"
                                     "    prerequisites: [add]\n")
    (tmp_path / "s.json").write_text(json.dumps([{"id": "add"}, {"id": "carry", "prerequisites": ["add"]}]))
    (tmp_path / "s.csv").write_text("id,name,description,family,prerequisites\nadd,Addition,,arith,\n"
                                    "carry,Carrying,,arith,add\n")
    for f in ("s.yaml", "s.json", "s.csv"):
        inv = load_inventory(tmp_path / f)
        assert inv.ids == ["add", "carry"] and inv["carry"].prerequisites == ("add",)
    (tmp_path / "bad.csv").write_text("id,name\nadd,Addition\n,nameless\n")
    with pytest.raises(DataError, match=r"bad.csv:3: field 'id'"):
        load_inventory(tmp_path / "bad.csv")
    (tmp_path / "cycle.json").write_text(json.dumps([{"id": "a", "prerequisites": ["b"]},
                                                     {"id": "b", "prerequisites": ["a"]}]))
    with pytest.raises(ConfigError, match="cycle"):
        load_inventory(tmp_path / "cycle.json")


def test_labelled_jsonl_with_unicode_line_separators_in_its_text(tmp_path):
    """GSM8K train has U+2028 inside questions: a JSONL splits on '\\n' only (str.splitlines would break it)."""
    f = tmp_path / "l.jsonl"
    f.write_text(json.dumps({"question": "Two lines\u2028in one", "skills": ["a"]}, ensure_ascii=False) + "\n"
                 + json.dumps({"question": "next\x85", "skills": ["b", "a"]}, ensure_ascii=False) + "\n",
                 encoding="utf-8")
    assert load_inventory(f).ids == ["a", "b"]
    assert len(load_inventory(shared_data() / "math-skill-labels" / "gsm8k_train.jsonl")) == 14
