"""Vietnamese alphabetical order for names shown to people (provinces, agencies).

Byte or code-point order puts "Cao Bằng" before "Cà Mau" and every "Đ…" after "Y…"; the
databases' default collations do the same (SQLite always, PostgreSQL with a C collation). This
key follows the Vietnamese alphabet, as ICU's ``vi`` collation and dictionaries do:

* letters first, whole name: a ă â b c d đ e ê (f) g h i (j) k l m n o ô ơ p q r s t u ư v
  (w) x y (z) — f, j, w, z only in foreign words, at their Latin place; a space sorts before
  any letter ("Cà Mau" < "Cao Bằng"), digits before letters;
* then tones, left to right: ngang (none), huyền (`), hỏi (?), ngã (~), sắc (´), nặng (.);
* then case (lower first).

Names are few (a hundred units, a few hundred agencies), so lists are sorted in Python and
the key works the same on SQLite and PostgreSQL. PyICU would need the ICU library at build
time (it ships no wheels), which ``make run`` on a fresh clone must not require.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable

from django.db.models import Case, Model, QuerySet, Value, When

ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
LETTER_RANK = {letter: rank for rank, letter in enumerate(ALPHABET)}
# Marks that make another letter (ă, â, ê, ô, ơ, ư), as combining characters after NFD.
LETTER_MARKS = {"\u0306", "\u0302", "\u031b"}
# Tone marks in dictionary order; no mark (ngang) is 0.
TONE_RANK = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}

Key = tuple[tuple[tuple[int, int], ...], tuple[int, ...], tuple[int, ...]]


def _letters(text: str) -> list[tuple[str, int, bool]]:
    """Each base letter (with its letter-making marks) of ``text``, its tone and its case."""
    letters: list[tuple[str, int, bool]] = []
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char) and letters:
            base, tone, upper = letters[-1]
            if char in LETTER_MARKS:
                letters[-1] = (base + char, tone, upper)
            elif char in TONE_RANK:
                letters[-1] = (base, TONE_RANK[char], upper)
            continue
        letters.append((char.lower(), 0, char.isupper()))
    return letters


def _primary(letter: str) -> tuple[int, int]:
    letter = unicodedata.normalize("NFC", letter)
    if letter in LETTER_RANK:
        return (3, LETTER_RANK[letter])
    if letter.isspace():
        return (0, 0)
    if letter.isdigit():
        return (2, int(letter) if letter.isascii() else ord(letter))
    return (1, ord(letter))  # punctuation, then letters of other alphabets by code point


def vietnamese_key(text: str) -> Key:
    """A sort key putting ``text`` in Vietnamese alphabetical order."""
    letters = _letters(text.strip())
    return (
        tuple(_primary(base) for base, _tone, _upper in letters),
        tuple(tone for _base, tone, _upper in letters),
        tuple(int(upper) for _base, _tone, upper in letters),
    )


def sorted_by_name[T](items: Iterable[T], name: Callable[[T], str | Iterable[str]]) -> list[T]:
    """``items`` in Vietnamese order of ``name(item)`` (a name, or several to sort by in turn)."""

    def key(item: T) -> tuple[Key, ...]:
        names = name(item)
        return tuple(vietnamese_key(n) for n in ([names] if isinstance(names, str) else names))

    return sorted(items, key=key)


def in_vietnamese_order[M: Model](queryset: QuerySet[M], *names: str) -> QuerySet[M]:
    """``queryset`` ordered by its ``names`` fields (``"name"``, ``"unit__name"``) in Vietnamese
    order, still a queryset (for a form field or a further filter): one query reads the names,
    the order is a ``CASE`` on the primary keys."""
    rows = list(queryset.order_by().values_list("pk", *names))
    ranked = sorted_by_name(rows, lambda row: [str(n or "") for n in row[1:]])
    if not ranked:
        return queryset
    rank = Case(*(When(pk=row[0], then=Value(i)) for i, row in enumerate(ranked)))
    return queryset.order_by(rank, "pk")
