"""How far a citizen is in the questionnaire, as a count that only moves forward.

Display conditions skip whole sections (SIPAS skips B5 unless Q8_4 is yes), so counting only
the sections shown *with the answers given so far* makes the total jump as answers arrive
("1/7", then "6/8"). Instead the total counts every section that **can still be shown**:

- sections before the current one count if they were shown (their answers are settled);
- the current section counts;
- a later section counts if one of its questions can still be shown: a question with no
  condition, or one whose condition names a question on this page or a later one (still to
  be answered, or changed), or a settled answer that meets the condition.

Walking forward, each step settles the answers of one page and nothing else, so the set of
sections that can still be shown only shrinks: the part number ``current`` grows by one and
``total`` never grows, and the share ``current / total`` only rises, up to 1 on the last
section. Only "Back" and a changed earlier answer move it back, as they should.

``settled`` says whether every section counted will be shown (so the page can say "Part 6 of
7") or some may still be skipped ("Part 1 of up to 8").
"""

from __future__ import annotations

from dataclasses import dataclass

from feedback.validation import CleanAnswer, is_shown
from surveys.models import Section


@dataclass(frozen=True)
class Progress:
    """Part ``current`` of at most ``total`` sections; ``settled`` when none can be skipped."""

    current: int
    total: int
    settled: bool

    @property
    def percent(self) -> int:
        return round(100 * self.current / self.total) if self.total else 100


def section_progress(
    sections: list[Section], section: Section, cleaned: dict[str, CleanAnswer]
) -> Progress:
    """Where ``section`` stands among ``sections``, given the answers ``cleaned`` so far."""
    index = sections.index(section)
    open_codes = {q.code for s in sections[index:] for q in s.questions.all()}
    possible: dict[str, bool] = {}  # the question can still be shown
    certain: dict[str, bool] = {}  # the question will be shown whatever is answered next
    for question in (q for s in sections for q in s.questions.all()):
        controlling = question.show_if_question
        if controlling is None:
            possible[question.code] = certain[question.code] = True
        elif controlling.code in open_codes:
            possible[question.code] = possible.get(controlling.code, False)
            certain[question.code] = False
        else:
            possible[question.code] = certain[question.code] = is_shown(question, cleaned)

    def shown(s: Section, by: dict[str, bool]) -> bool:
        return any(by[q.code] for q in s.questions.all())

    before = sum(1 for s in sections[:index] if shown(s, possible))
    after = [s for s in sections[index + 1 :] if shown(s, possible)]
    return Progress(
        current=before + 1,
        total=before + 1 + len(after),
        settled=all(shown(s, certain) for s in after),
    )
