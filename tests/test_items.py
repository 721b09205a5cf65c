import json

import pytest

from skillgap.errors import DataError
from skillgap.items import Item, read_jsonl, write_jsonl


def _items():
    return [
        Item("a", "85", ("add_multi",), prompt="47 + 38?", metadata={"steps": [{"skill": "add_multi", "value": 85}]}),
        Item("b", "3", ("add_1digit", "fraction_of"), messages=({"role": "user", "content": "..."},), split="train",
             metadata={"steps": [{"skill": "add_1digit", "value": 9}, {"skill": "fraction_of", "value": 3}]}),
    ]


def test_round_trip_and_k(tmp_path):
    path = write_jsonl(_items(), tmp_path / "items.jsonl")
    back = read_jsonl(path)
    assert back == _items()
    assert [json.loads(line)["k"] for line in path.read_text().splitlines()] == [1, 2]


def test_datasets_reads_the_file_as_is(tmp_path):
    import datasets

    path = write_jsonl(_items(), tmp_path / "items.jsonl")
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds.num_rows == 2
    assert ds[1]["skills"] == ["add_1digit", "fraction_of"] and ds[1]["k"] == 2
    assert ds[0]["prompt"] == "47 + 38?" and ds[1]["messages"][0]["role"] == "user"


@pytest.mark.parametrize("line, field, message", [
    ('{"id": "x", "answer": "1", "skills": ["s"], "prompt": "q"', None, "invalid JSON"),
    ('{"id": "x", "skills": ["s"], "prompt": "q"}', "answer", "missing"),
    ('{"id": "x", "answer": "1", "skills": "s", "prompt": "q"}', "skills", "list of skill ids"),
    ('{"id": "x", "answer": "1", "skills": ["s"], "k": 2, "prompt": "q"}', "k", "lists 1 skills"),
    ('{"id": "x", "answer": "1", "skills": ["s"]}', "prompt", "exactly one"),
    ('{"id": "x", "answer": "1", "skills": ["s"], "messages": [{"role": "user"}]}', "messages[0]", "content"),
    ('{"id": "a", "answer": "1", "skills": ["s"], "prompt": "q"}', "id", "already used on line 1"),
])
def test_malformed_line_names_file_line_and_field(tmp_path, line, field, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "answer": "1", "skills": ["s"], "prompt": "q"}\n\n' + line + "\n")
    with pytest.raises(DataError) as e:
        read_jsonl(path)
    assert e.value.line == 3 and e.value.field == field
    assert str(e.value).startswith(f"{path}:3: ")
    assert message in str(e.value)
