"""The built-in SIPAS questionnaire and the survey frame load as SIPAS.md describes them."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from surveys.loaders import SIPAS_2022, load_questionnaire
from surveys.models import Indicator, Question, QuestionnaireVersion, Round, Unit

pytestmark = pytest.mark.django_db


def table_counts() -> dict[str, int]:
    """How many rows each model of the surveys app holds (units, agencies, versions, rounds…)."""
    return {m.__name__: m.objects.count() for m in apps.get_app_config("surveys").get_models()}


def descendants(node: Indicator) -> list[Indicator]:
    found = []
    for child in node.children.all():
        found += [child, *descendants(child)]
    return found


def codes(queryset) -> list[str]:
    return list(queryset.order_by("position").values_list("code", flat=True))


class TestIdempotence:
    def test_load_sipas_twice_changes_nothing(self) -> None:
        out = StringIO()
        call_command("load_sipas", stdout=out)
        first = table_counts()
        call_command("load_sipas", stdout=out)
        assert table_counts() == first
        assert "already loaded, unchanged" in out.getvalue()
        assert first["QuestionnaireVersion"] == 1

    def test_bootstrap_twice_changes_nothing(self) -> None:
        call_command("bootstrap", stdout=StringIO())
        first = table_counts()
        call_command("bootstrap", stdout=StringIO())
        assert table_counts() == first
        # The centre of each 2022 province, and three agencies of each of the 34 current
        # units (10 of which are 2022 provinces the merger left as they were).
        assert first["Agency"] == 63 + 34 * 3 - 10

    def test_a_changed_file_becomes_a_new_version(self, sipas, tmp_path) -> None:
        changed = tmp_path / "sipas.yaml"
        changed.write_text(
            SIPAS_2022.read_text(encoding="utf-8").replace("2022 household form", "2023 form"),
            encoding="utf-8",
        )
        version, created = load_questionnaire(changed)
        assert created and version.number == sipas.number + 1
        assert version.questions.count() == sipas.questions.count()


class TestSipasStructure:
    def test_the_version_is_published_with_all_questions(self, sipas) -> None:
        assert sipas.status == QuestionnaireVersion.Status.PUBLISHED
        assert sipas.questionnaire.code == "sipas"
        assert sipas.questions.count() == 75
        assert codes(sipas.sections) == ["A", "B1", "B2", "B3", "B4", "B5", "B6", "B7"]

    def test_policy_part_has_four_contents_and_fourteen_items(self, sipas) -> None:
        policy = sipas.indicators.get(code="POL")
        contents = {c.code: codes(c.children) for c in policy.children.order_by("position")}
        assert contents == {
            "POL.A": ["P01", "P02"],
            "POL.B": ["P03", "P04"],
            "POL.C": [f"P{n:02d}" for n in range(5, 13)],
            "POL.D": ["P13", "P14"],
        }

    def test_service_part_has_five_elements_and_nineteen_criteria(self, sipas) -> None:
        service = sipas.indicators.get(code="SVC")
        sizes = [c.children.count() for c in service.children.order_by("position")]
        assert sizes == [4, 4, 5, 3, 3]
        items = [i.code for i in descendants(service) if i.kind == Indicator.Kind.ITEM]
        assert sorted(items) == [f"S{n:02d}" for n in range(1, 20)]

    def test_sipas_counts_45_satisfaction_indicators(self, sipas) -> None:
        root = sipas.indicators.get(code="SIPAS", parent=None)
        nodes = [root, *descendants(root)]
        items = [n for n in nodes if n.kind == Indicator.Kind.ITEM]
        assert (len(nodes), len(items)) == (45, 33)
        assert {c.code for c in root.children.all()} == {"POL", "SVC"}

    def test_eight_policy_groups_each_rated_for_quality_and_interest(self, sipas) -> None:
        assert codes(sipas.policy_groups) == [f"G{n}" for n in range(1, 9)]
        quality = sipas.indicators.filter(code__in=[f"P{n:02d}" for n in range(5, 13)])
        interest = sipas.indicators.filter(parent__code="INTEREST")
        assert [i.policy_group.code for i in quality.order_by("code")] == [
            f"G{n}" for n in range(1, 9)
        ]
        assert sorted(i.policy_group.code for i in interest) == [f"G{n}" for n in range(1, 9)]

    def test_expectation_integrity_and_interest_indicators(self, sipas) -> None:
        assert codes(sipas.indicators.get(code="EXP").children) == [
            f"E{n:02d}" for n in range(1, 11)
        ]
        assert codes(sipas.indicators.get(code="INTEG").children) == ["Q4", "Q5"]
        assert sipas.questions.get(code="E03").satisfied_values == ["rat_nhieu", "nhieu"]
        assert sipas.questions.get(code="Q4").satisfied_values == ["khong_co"]

    def test_every_item_is_fed_by_its_question_and_counts_4_or_5(self, sipas) -> None:
        for code in [f"P{n:02d}" for n in range(1, 15)] + [f"S{n:02d}" for n in range(1, 20)]:
            question = sipas.questions.get(code=code)
            assert question.type == Question.Type.SCALE
            assert question.indicator.code == code
            assert question.satisfied_values == [4, 5]
            assert codes(question.choices) == ["1", "2", "3", "4", "5"]
            assert question.choices.get(code="4").label_vi == "Hài lòng"

    def test_demographics_and_open_text_are_excluded(self, sipas) -> None:
        excluded = set(
            sipas.questions.filter(excluded_from_indices=True).values_list("code", flat=True)
        )
        assert {f"A{n:02d}" for n in range(1, 11)} <= excluded
        assert {"Q2", "Q3", "Q6", "Q7", "Q11"} <= excluded
        assert not sipas.questions.filter(excluded_from_indices=True, indicator__isnull=False)

    def test_display_conditions_follow_our_rule(self, sipas) -> None:
        service_items = sipas.questions.filter(code__startswith="S")
        assert service_items.count() == 19
        assert {(q.show_if_question.code, tuple(q.show_if_values)) for q in service_items} == {
            ("Q8_4", (True,))
        }
        assert sipas.questions.get(code="P06").show_if_question.code == "Q8_2"
        assert sipas.questions.get(code="P07").show_if_question.code == "Q8_1"
        assert sipas.questions.filter(show_if_question__isnull=False).count() == 21

    def test_labels_are_bilingual(self, sipas) -> None:
        missing = sipas.questions.filter(label_en="") | sipas.questions.filter(label_vi="")
        assert not missing.exists()
        assert sipas.questions.get(code="E08").help_en  # wording not recovered: flagged


class TestRoundsAndUnits:
    def test_sipas_2022_is_closed_and_demo_is_open(self, sipas) -> None:
        historic, demo = Round.objects.get(code="sipas-2022"), Round.objects.get(code="demo")
        assert not historic.is_open() and demo.is_open()
        for survey_round in (historic, demo):
            assert survey_round.version == sipas
            assert survey_round.units.count() == 63

    def test_63_provinces_before_the_merger_and_34_after(self, units) -> None:
        on = dt.date(2025, 6, 30), dt.date(2025, 7, 1)
        counts = [sum(u.is_valid_on(day) for u in Unit.objects.all()) for day in on]
        assert counts == [63, 34]

    def test_merged_units_record_their_predecessors(self, units) -> None:
        thai_nguyen = Unit.objects.get(code="19-2025")
        assert thai_nguyen.name == "Thái Nguyên"
        assert sorted(thai_nguyen.predecessors.values_list("code", flat=True)) == ["06", "19"]
        hcmc = Unit.objects.get(name="Thành phố Hồ Chí Minh", valid_from__isnull=False)
        assert hcmc.kind == Unit.Kind.MUNICIPALITY
        assert sorted(hcmc.predecessors.values_list("code", flat=True)) == ["74", "77", "79"]
        assert Unit.objects.get(code="06").valid_to == dt.date(2025, 6, 30)

    def test_unmerged_provinces_go_on_unchanged(self, units) -> None:
        ha_noi = Unit.objects.get(code="01")
        assert ha_noi.valid_to is None and not ha_noi.successors.exists()

    def test_a_renamed_province_is_a_successor_of_one(self, units) -> None:
        hue = Unit.objects.get(name="Thành phố Huế")
        assert list(hue.predecessors.values_list("code", flat=True)) == ["46"]

    def test_every_2022_province_has_exactly_one_2025_unit(self, units) -> None:
        day = dt.date(2025, 7, 1)
        for old in Unit.objects.filter(valid_from__isnull=True):
            current = [old] if old.is_valid_on(day) else list(old.successors.all())
            assert len(current) == 1, old
