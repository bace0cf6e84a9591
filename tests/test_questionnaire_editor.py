"""The questionnaire editor of the admin: small pages (version → section → question), positions
numbered from 1 everywhere, reorder by number, and a conditional question with its choices
added in one save without a false "not an earlier question" error."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from surveys import services
from surveys.models import (
    Choice,
    PublishedVersionImmutable,
    Question,
    QuestionnaireVersion,
    Section,
)
from tests.factories import QuestionFactory, SectionFactory
from tests.support.admin import FormInputs, admin_url, form_data, post_change_form

pytestmark = pytest.mark.django_db

Status = QuestionnaireVersion.Status


@pytest.fixture
def draft(make_draft: Any) -> QuestionnaireVersion:
    """USED (yes/no, position 1) and SAT (scale shown if USED is yes, position 2) in MAIN."""
    return make_draft()


@pytest.fixture
def sipas_draft(admin_client: Client, sipas: QuestionnaireVersion) -> QuestionnaireVersion:
    """A draft of SIPAS started through the admin's "start a new draft" button."""
    response = admin_client.post(admin_url("questionnaireversion", "new_draft", sipas.pk))
    assert response.status_code == 302
    return QuestionnaireVersion.objects.get(based_on=sipas)


def order(section: Section) -> list[tuple[str, int]]:
    return list(section.questions.order_by("position", "id").values_list("code", "position"))


def add_question(
    client: Client,
    section: Section,
    *,
    code: str,
    position: str = "",
    choices: list[tuple[str, str]] = (),
    **fields: str,
) -> Any:
    """Fill in the admin's "add a question" page of ``section`` and save it once."""
    url = f"{admin_url('question', 'add')}?section={section.pk}"
    data = form_data(client, url, "question_form")
    assert data["section"] == [str(section.pk)]  # the link from the section preselects it
    data.update(code=[code], position=[position], label_vi=[f"Câu {code}"])
    data.update({name: [value] for name, value in fields.items()})
    data["choices-TOTAL_FORMS"] = [str(len(choices))]
    for index, (choice_code, label) in enumerate(choices):
        data[f"choices-{index}-code"] = [choice_code]
        data[f"choices-{index}-label_vi"] = [label]
        data.setdefault(f"choices-{index}-position", [""])
    data["_save"] = ["Save"]
    return client.post(url, data)


def a_or_b_if(condition: Question) -> dict[str, Any]:
    """The fields of a single choice (a, b), excluded from indices, shown on ``condition``."""
    return {
        "type": Question.Type.SINGLE,
        "show_if_question": str(condition.pk),
        "excluded_from_indices": "on",
        "choices": [("a", "A"), ("b", "B")],
    }


def edit_rows(client: Client, section: Section, changes: dict[str, dict[str, str]]) -> Any:
    """Post a section's page back with fields of some question rows changed."""
    url = admin_url("section", "change", section.pk)
    data = form_data(client, url, "section_form")
    ids = dict(section.questions.values_list("pk", "code"))
    for name, values in list(data.items()):
        if name.startswith("questions-") and name.endswith("-id") and values[0]:
            prefix = name.removesuffix("-id")
            for field, value in changes.get(ids[int(values[0])], {}).items():
                data[f"{prefix}-{field}"] = [value]
    data["_save"] = ["Save"]
    return client.post(url, data)


def inline_errors(response: Any) -> list[Any]:
    found = []
    for inline in response.context["inline_admin_formsets"]:
        found.extend(inline.formset.non_form_errors())
        found.extend(error for form in inline.formset.forms for error in form.errors.items())
    return found


# --- Adding a question with its choices and condition in one save --------------------------------


class TestOneSave:
    def test_conditional_single_choice_question_with_choices_is_added_and_published(
        self, admin_client: Client, sipas_draft: QuestionnaireVersion
    ) -> None:
        # The case of the issue: after Q8_4 (yes/no), a question shown when it is yes.
        section = sipas_draft.questions.get(code="Q8_4").section
        condition = sipas_draft.questions.get(code="Q8_4")
        before = order(section)

        response = add_question(
            admin_client,
            section,
            code="Q8_4a",
            position=str(condition.position + 1),
            type=Question.Type.SINGLE,
            show_if_question=str(condition.pk),
            show_if_values="[true]",
            excluded_from_indices="on",
            choices=[
                ("truc_tiep", "Trực tiếp"),
                ("truc_tuyen", "Trực tuyến"),
                ("ca_hai", "Cả hai"),
            ],
        )

        assert response.status_code == 302, response.context and inline_errors(response)
        assert response.url == admin_url("section", "change", section.pk)
        added = sipas_draft.questions.get(code="Q8_4a")
        assert (added.show_if_question_id, added.show_if_values) == (condition.pk, [True])
        assert list(added.choices.order_by("position").values_list("code", "position")) == [
            ("truc_tiep", 1),
            ("truc_tuyen", 2),
            ("ca_hai", 3),
        ]
        codes = [code for code, _p in before]
        at = codes.index("Q8_4") + 1
        expected = [*codes[:at], "Q8_4a", *codes[at:]]
        assert order(section) == [(code, n) for n, code in enumerate(expected, start=1)]

        published = admin_client.post(admin_url("questionnaireversion", "publish", sipas_draft.pk))
        assert published.status_code == 302
        sipas_draft.refresh_from_db()
        assert sipas_draft.status == Status.PUBLISHED

    def test_question_added_at_the_end_of_a_section_with_a_condition_from_the_same_save_page(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        # No position given: the question goes last, after its condition, with no error.
        section = draft.sections.get()
        used = draft.questions.get(code="USED")

        response = add_question(
            admin_client, section, code="WHY", show_if_values="[false]", **a_or_b_if(used)
        )

        assert response.status_code == 302, inline_errors(response)
        assert order(section) == [("USED", 1), ("SAT", 2), ("WHY", 3)]

    def test_condition_on_a_question_that_would_come_later_is_refused_and_nothing_is_stored(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        section = draft.sections.get()
        used = draft.questions.get(code="USED")

        response = add_question(
            admin_client, section, code="EARLY", position="1", show_if_values="[true]",
            **a_or_b_if(used),
        )  # fmt: skip

        assert response.status_code == 200
        assert "show_if_question" in response.context["adminform"].form.errors
        assert "USED" in str(response.context["adminform"].form.errors["show_if_question"])
        assert order(section) == [("USED", 1), ("SAT", 2)]
        assert not Choice.objects.filter(question__code="EARLY").exists()

    def test_moving_a_condition_after_the_question_it_shows_is_refused_on_its_page(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        used = draft.questions.get(code="USED")
        response = post_change_form(admin_client, "question", used, position="5")

        assert response.status_code == 200
        assert "SAT" in str(response.context["adminform"].form.errors["position"])
        assert order(draft.sections.get()) == [("USED", 1), ("SAT", 2)]


# --- Positions -----------------------------------------------------------------------------------


class TestPositions:
    def test_question_added_at_a_taken_position_goes_there_and_the_others_move_down(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        section = draft.sections.get()
        response = add_question(
            admin_client,
            section,
            code="NOTE",
            position="2",
            type=Question.Type.TEXT,
            excluded_from_indices="on",
        )
        assert response.status_code == 302, inline_errors(response)
        assert order(section) == [("USED", 1), ("NOTE", 2), ("SAT", 3)]

    def test_reorder_by_number_on_the_section_page_numbers_the_questions_from_one(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        section = draft.sections.get()
        QuestionFactory(section=section, code="NOTE", position=3, excluded_from_indices=True)

        response = edit_rows(admin_client, section, {"NOTE": {"position": "1"}})

        assert response.status_code == 302, inline_errors(response)
        assert order(section) == [("NOTE", 1), ("USED", 2), ("SAT", 3)]

    def test_deleting_a_row_closes_the_gap(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        section = draft.sections.get()
        QuestionFactory(section=section, code="NOTE", position=2, excluded_from_indices=True)
        Question.objects.filter(code="SAT", version=draft).update(position=3)

        response = edit_rows(admin_client, section, {"NOTE": {"DELETE": "on"}})

        assert response.status_code == 302, inline_errors(response)
        assert order(section) == [("USED", 1), ("SAT", 2)]

    def test_reorder_putting_a_question_before_its_condition_is_refused(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        section = draft.sections.get()

        response = edit_rows(admin_client, section, {"SAT": {"position": "1"}})

        assert response.status_code == 200
        assert any("USED" in str(error) for error in inline_errors(response))
        assert order(section) == [("USED", 1), ("SAT", 2)]

    def test_sections_reorder_by_number_and_a_move_breaking_a_condition_is_refused(
        self, admin_client: Client, draft: QuestionnaireVersion
    ) -> None:
        main = draft.sections.get()
        extra = SectionFactory(version=draft, code="EXTRA", position=2)
        QuestionFactory(section=extra, code="MORE", position=1, excluded_from_indices=True)
        url = admin_url("questionnaireversion", "change", draft.pk)

        def post_positions(positions: dict[int, str]) -> Any:
            data = form_data(admin_client, url, "questionnaireversion_form")
            for name, values in list(data.items()):
                if name.startswith("sections-") and name.endswith("-id") and values[0]:
                    data[name.replace("-id", "-position")] = [positions[int(values[0])]]
            data["_save"] = ["Save"]
            return admin_client.post(url, data)

        def codes() -> list[tuple[str, int]]:
            return list(draft.sections.order_by("position").values_list("code", "position"))

        assert post_positions({main.pk: "2", extra.pk: "1"}).status_code == 302
        assert codes() == [("EXTRA", 1), ("MAIN", 2)]
        assert post_positions({main.pk: "1", extra.pk: "2"}).status_code == 302
        assert codes() == [("MAIN", 1), ("EXTRA", 2)]

        # Now a question of EXTRA is shown by USED of MAIN: EXTRA may not go first.
        more = extra.questions.get()
        more.show_if_question = draft.questions.get(code="USED")
        more.show_if_values = [True]
        more.save()
        refused = post_positions({main.pk: "2", extra.pk: "1"})

        assert refused.status_code == 200
        assert any("USED" in str(error) for error in inline_errors(refused))
        assert codes() == [("MAIN", 1), ("EXTRA", 2)]

    def test_saving_every_page_of_an_untouched_sipas_draft_keeps_its_positions_from_one(
        self, admin_client: Client, sipas_draft: QuestionnaireVersion
    ) -> None:
        def positions() -> dict[str, list[tuple[str, int]]]:
            return {
                "sections": list(sipas_draft.sections.values_list("code", "position")),
                "questions": list(sipas_draft.questions.values_list("code", "position")),
                "choices": list(
                    Choice.objects.filter(question__version=sipas_draft).values_list(
                        "question__code", "code", "position"
                    )
                ),
            }

        stored = positions()
        for section in sipas_draft.sections.all():
            assert sorted(p for _c, p in order(section)) == list(
                range(1, section.questions.count() + 1)
            )
        pages = [
            (
                admin_url("questionnaireversion", "change", sipas_draft.pk),
                "questionnaireversion_form",
            )
        ]
        pages += [
            (admin_url("section", "change", s.pk), "section_form")
            for s in sipas_draft.sections.all()
        ]
        a05 = sipas_draft.questions.get(code="A05")
        pages.append((admin_url("question", "change", a05.pk), "question_form"))
        for url, form_id in pages:
            data = form_data(admin_client, url, form_id)
            data["_continue"] = ["Save"]
            assert admin_client.post(url, data).status_code == 302, url

        assert positions() == stored

    def test_ordering_a_published_version_is_refused(self, sipas: QuestionnaireVersion) -> None:
        section = sipas.sections.get(code="A")
        with pytest.raises(PublishedVersionImmutable):
            services.order_questions(section_id=section.pk, question_ids=[])
        assert order(section)[0] == ("A01", 1)


# --- Page size -----------------------------------------------------------------------------------


def test_every_editor_page_of_a_sipas_draft_has_a_bounded_number_of_fields(
    admin_client: Client, sipas_draft: QuestionnaireVersion
) -> None:
    # The single page this replaces had 4,872 fields (and took 16-24 s to open).
    pages = {"version": admin_url("questionnaireversion", "change", sipas_draft.pk)}
    pages |= {s.code: admin_url("section", "change", s.pk) for s in sipas_draft.sections.all()}
    biggest = max(sipas_draft.questions.all(), key=lambda q: q.choices.count())
    pages["question"] = admin_url("question", "change", biggest.pk)
    counts = {}
    for name, url in pages.items():
        form_id = {"version": "questionnaireversion_form", "question": "question_form"}.get(
            name, "section_form"
        )
        parser = FormInputs(form_id)
        parser.feed(admin_client.get(url).content.decode())
        counts[name] = parser.fields
    assert all(0 < count <= 250 for count in counts.values()), counts
