"""Other people's datasets as items: GSM8K and MATH (read from ../shared/data), CSV, Parquet, saved datasets."""

import json

import pytest
from conftest import run_cli, shared_data

from skillgap.errors import ConfigError, DataError
from skillgap.formats import parse_fields, read_items
from skillgap.grade import get_grader, math, normalize_math


def test_gsm8k_format_from_the_real_file():
    items, grader = read_items(shared_data() / "gsm8k" / "test.jsonl")  # sniffed: 'question' + '#### N'
    assert grader == "numeric" and len(items) == 1319
    first = items[0]
    assert first.prompt.startswith("Janet") and first.answer == "18" and first.skills == ()
    assert "<<" not in first.completion and first.completion.endswith("The answer is 18.")
    assert all("," not in it.answer for it in items)  # '1,000' -> '1000'
    assert get_grader(grader)(first.completion, first.answer).correct


def test_math_format_from_the_real_file():
    items, grader = read_items(shared_data() / "math" / "test.jsonl", "math")
    assert grader == "math" and items[0].answer == "2" and items[0].metadata["subject"] == "Algebra"
    assert items[0].id == "test/algebra/1.json"
    graded = [math(it.completion, it.answer) for it in items[:200] if it.completion]
    assert sum(g.correct for g in graded) / len(graded) > 0.95  # the reference solution grades as right


def test_math_grader_by_hand():
    assert normalize_math(" \\dfrac{1}{2}. ") == "\\frac{1}{2}"
    assert math("so $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$", "\\left( 3, \\frac{\\pi}{2} \\right)").correct
    assert math("The answer is 0.5", "\\frac{1}{2}").correct
    assert math("\\boxed{90^\\circ}", "90").correct and math("\\boxed{10\\%}", "10").correct
    assert not math("\\boxed{1,2}", "12").correct  # a pair is not a number
    assert not math("\\boxed{x+1}", "x-1").correct
    assert math("no answer here", "2").status == "parse_error"


def test_tables_with_a_field_mapping(tmp_path):
    from datasets import Dataset

    rows = [{"qid": "a", "question": "2+2?", "target": 4, "tags": "add;small"},
            {"qid": "b", "question": "3*3?", "target": 9, "tags": "mul"}]
    fields = parse_fields(["id=qid", "prompt=question", "answer=target", "skills=tags"])
    (tmp_path / "t.csv").write_text("qid,question,target,tags\n" + "\n".join(
        f"{r['qid']},{r['question']},{r['target']},{r['tags']}" for r in rows) + "\n")
    Dataset.from_list(rows).to_parquet(tmp_path / "t.parquet")
    Dataset.from_list(rows).save_to_disk(tmp_path / "saved")
    for source in ("t.csv", "t.parquet", "saved"):
        items, _ = read_items(tmp_path / source, fields=fields)
        assert [(it.id, it.prompt, it.answer, it.skills) for it in items] == \
            [("a", "2+2?", "4", ("add", "small")), ("b", "3*3?", "9", ("mul",))]
    with pytest.raises(DataError, match=r"t.csv:2: field 'prompt': missing; map it with --field prompt=COLUMN"):
        read_items(tmp_path / "t.csv", "table")
    with pytest.raises(ConfigError, match="TARGET=COLUMN"):
        parse_fields(["question"])
    with pytest.raises(ConfigError, match="Did you mean 'gsm8k'"):
        read_items(tmp_path / "t.csv", "gsm8k8")


def test_bad_gsm8k_record_names_file_line_field(tmp_path):
    (tmp_path / "g.jsonl").write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n"
                                      + json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(DataError, match=r"g.jsonl:2: field 'answer': no '####'"):
        read_items(tmp_path / "g.jsonl", "gsm8k")


def test_profile_a_gsm8k_file_like_a_suite(tmp_path, tiny_model_dir):
    lines = (shared_data() / "gsm8k" / "test.jsonl").read_text().splitlines()[:4]
    (tmp_path / "g.jsonl").write_text("\n".join(lines) + "\n")  # a scratch copy of 4 rows, outside the repo
    run_cli("profile", "--model", str(tiny_model_dir), "--data", "g.jsonl", "--format", "gsm8k", "--limit", "3",
            "--max-new-tokens", "4", "--device", "cpu", "--output-path", "p.json", cwd=tmp_path)
    prof = json.loads((tmp_path / "p.json").read_text())
    assert prof["overall"]["n"] == 3 and "format=gsm8k" in prof["data"]


def test_classification_format_from_the_real_files_with_lm_bff_label_words():
    sst2, grader = read_items(shared_data() / "text-classification" / "sst2_dev.jsonl")  # sniffed: sentence + label
    assert grader == "exact" and len(sst2) == 872
    assert {it.answer for it in sst2} == {"terrible", "great"} and all(it.skills == ("sst2",) for it in sst2)
    first = json.loads((shared_data() / "text-classification" / "sst2_dev.jsonl").read_text().splitlines()[0])
    assert sst2[0].answer == ["terrible", "great"][first["label"]] and first["sentence"] in sst2[0].prompt
    assert "(terrible / great)" in sst2[0].prompt and sst2[0].metadata["choices"] == ["terrible", "great"]
    assert sst2[0].completion == sst2[0].answer  # trained to answer with the word that label-word scoring ranks
    trec, _ = read_items(shared_data() / "text-classification" / "trec_test.jsonl", "classification")
    names = {it.metadata["label"]: it.answer for it in trec}
    assert names == {0: "Description", 1: "Entity", 2: "Expression", 3: "Human", 4: "Location", 5: "Number"}


def test_classification_files_of_other_tasks_name_their_classes(tmp_path):
    rows = [{"text": "cheap flights", "label": 1, "label_name": "travel"},
            {"text": "(goal!) 2-1", "label": 0, "label_name": "sport"}]
    (tmp_path / "news_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    items, _ = read_items(tmp_path / "news_train.jsonl", "classification")
    assert [it.answer for it in items] == ["travel", "sport"] and items[0].skills == ("news",)
    assert all(it.metadata["choices"] == ["sport", "travel"] for it in items)  # in label order
    assert items[1].prompt == "(goal!) 2-1\nIn one word (sport / travel), the label is:"
    (tmp_path / "bad_train.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps({"text": "x", "label": 1}) + "\n")
    with pytest.raises(DataError, match=r"bad_train.jsonl:2: field 'label_name': missing"):
        read_items(tmp_path / "bad_train.jsonl", "classification")
    (tmp_path / "sst2_x.jsonl").write_text(json.dumps({"sentence": "fine", "label": 2}) + "\n")
    with pytest.raises(DataError, match=r"sst2_x.jsonl:1: field 'label': 2 is not a class of sst2"):
        read_items(tmp_path / "sst2_x.jsonl", "classification")
