import pytest

from skillgap.errors import ConfigError
from skillgap.skills import Skill, SkillSet


def test_topological_order_puts_prerequisites_first():
    s = SkillSet((Skill("c", "C", prerequisites=("b",)), Skill("a", "A"), Skill("b", "B", prerequisites=("a",))))
    assert s.topological_order() == ["a", "b", "c"]
    assert s.ancestors("c") == {"a", "b"}


def test_cycle_is_an_error_naming_the_cycle():
    with pytest.raises(ConfigError, match=r"cycle: a -> b -> a"):
        SkillSet((Skill("a", "A", prerequisites=("b",)), Skill("b", "B", prerequisites=("a",))))


def test_unknown_prerequisite_and_duplicate_id():
    with pytest.raises(ConfigError, match="unknown prerequisite 'zz'"):
        SkillSet((Skill("a", "A", prerequisites=("zz",)),))
    with pytest.raises(ConfigError, match="defined twice"):
        SkillSet((Skill("a", "A"), Skill("a", "A again")))


def test_round_trip_through_dicts():
    s = SkillSet((Skill("a", "A", "desc", "fam"), Skill("b", "B", prerequisites=("a",))))
    assert SkillSet.from_dicts(s.to_dicts()) == s
    with pytest.raises(ConfigError, match="Unknown skill 'x'"):
        s["x"]
