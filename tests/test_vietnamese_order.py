"""Names listed for people follow the Vietnamese alphabet: "Cà Mau" before "Cao Bằng", the Đ
provinces after the D ones (not last), tones after letters; the same order as PostgreSQL's
ICU ``vi`` collation, on both databases."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from surveys.collation import in_vietnamese_order, sorted_by_name, vietnamese_key
from surveys.loaders import ensure_demo_agencies
from surveys.models import Agency, Unit

pytestmark = pytest.mark.django_db

OPTION = re.compile(r"<option value=\"[^\"]+\"[^>]*>([^<]+)</option>")


def select_options(html: str, select_id: str) -> list[str]:
    block = html.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return OPTION.findall(block)


UNIT_OPTION = re.compile(r'<option value="([^"]+)"[^>]*>([^<]+)</option>')
AGENCY_OPTION = re.compile(r'data-unit="([^"]+)">([^<]+)</option>')


def assert_agencies_by_unit_in_vietnamese_order(page: str) -> None:
    """The agencies the form's script narrows from (every unit's, in a ``<template>``) come
    unit by unit in the unit list's order, and each unit's in Vietnamese order of names."""
    unit_block = page.split('id="id_unit"', 1)[1].split("</select>", 1)[0]
    unit_order = [code for code, _name in UNIT_OPTION.findall(unit_block)]
    block = page.split('<template id="agency-options">', 1)[1].split("</template>", 1)[0]
    agencies = AGENCY_OPTION.findall(block)
    units_seen = list(dict.fromkeys(unit for unit, _name in agencies))
    assert len(units_seen) > 1
    assert units_seen == [code for code in unit_order if code in units_seen]
    for unit in units_seen:
        names = [name for code, name in agencies if code == unit]
        assert names == sorted_by_name(names, lambda n: n)


def assert_vietnamese_order(names: list[str]) -> None:
    """The cases of the issue on a real list of province names."""
    position = {name: i for i, name in enumerate(names)}
    assert position["Cà Mau"] < position["Cao Bằng"]
    d_names = [n for n in names if n.startswith("D")]
    dd_names = [n for n in names if n.startswith("Đ")]
    later = [n for n in names if n[0] in "EGH"]
    assert dd_names, names
    assert max(position[n] for n in d_names or ["Cao Bằng"]) < min(position[n] for n in dd_names)
    assert max(position[n] for n in dd_names) < min(position[n] for n in later)


def test_the_key_orders_letters_then_tones_then_case() -> None:
    names = ["Đồng Nai", "Gia Lai", "Cao Bằng", "Dak", "cà mau", "Ea Súp", "Cà Mau", "Cạ Mau"]
    names += ["Cá Mau", "Ca Mau", "Cả Mau", "Cã Mau", "Đà Nẵng", "Điện Biên", "Ô Môn", "Ơ Ri"]
    assert sorted(names, key=vietnamese_key) == [
        "Ca Mau",
        "cà mau",
        "Cà Mau",
        "Cả Mau",
        "Cã Mau",
        "Cá Mau",
        "Cạ Mau",
        "Cao Bằng",
        "Dak",
        "Đà Nẵng",
        "Điện Biên",
        "Đồng Nai",
        "Ea Súp",
        "Gia Lai",
        "Ô Môn",
        "Ơ Ri",
    ]


@pytest.mark.postgres
def test_the_order_of_every_unit_name_is_postgresqls_icu_vietnamese_order(units: None) -> None:
    ensure_demo_agencies()
    names = list(Unit.objects.values_list("name", flat=True))
    names += list(Agency.objects.values_list("name_vi", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT n FROM unnest(%s::text[]) AS n ORDER BY n COLLATE "vi-x-icu"', [names]
        )
        icu = [row[0] for row in cursor.fetchall()]
    assert len(names) > 200
    assert sorted_by_name(names, lambda n: n) == icu


def test_a_queryset_in_vietnamese_order_stays_a_queryset(units: None) -> None:
    ordered = in_vietnamese_order(Unit.objects.filter(valid_to__isnull=True), "name")
    names = list(ordered.values_list("name", flat=True))
    assert names == sorted_by_name(names, lambda n: n)
    assert list(ordered.filter(name__startswith="C").values_list("name", flat=True)) == [
        "Cà Mau",
        "Cao Bằng",
        "Cần Thơ",
    ]


def test_the_web_form_lists_units_and_agencies_in_vietnamese_order(sipas: Any) -> None:
    ensure_demo_agencies()
    page = Client().get("/rounds/demo/", HTTP_ACCEPT_LANGUAGE="vi").content.decode()
    units = select_options(page, "id_unit")
    assert len(units) >= 34
    assert_vietnamese_order(units)
    assert_agencies_by_unit_in_vietnamese_order(page)


def test_the_petition_form_lists_units_and_agencies_in_vietnamese_order(sipas: Any) -> None:
    ensure_demo_agencies()
    page = Client().get("/petitions/new/", HTTP_ACCEPT_LANGUAGE="vi").content.decode()
    units = select_options(page, "id_unit")
    assert_vietnamese_order(units)
    assert_agencies_by_unit_in_vietnamese_order(page)
