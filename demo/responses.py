"""Synthetic SIPAS responses for demos and benchmarks, bulk-inserted (COPY on PostgreSQL).

``generate_demo_responses`` adds N paper responses of the SIPAS household questionnaire to a
round, spread evenly over the round's units. Each unit has a latent satisfaction level like
the published 2022 results (docs/scoring-method/national.md, "Demo data with villages"):
Quảng Ninh near 87.6, Lạng Sơn near 72.5, a few other published top and bottom provinces
pinned, the rest drawn per seed around 80. A respondent's answers vary around that level (a
personal effect, item offsets, a policy/service shift per unit); screeners route the form as
its display conditions say, so answers to hidden questions are never generated; optional
questions are left blank now and then.

Villages (the sample design since 2022; docs/scoring-method/national.md, "Demo data with
villages"): respondents of a unit are sampled by village, ``VILLAGE_SIZE`` (31) per village
in order (the k-th respondent of a unit is in its village k // 31 + 1), so the full SIPAS
size of ~580 per province gives ~19 villages as in 2024; every response records its village
as its PSU (``psu`` "19-T07"; the stratum stays the unit) and as its answers A08–A10
(district, commune, village: 3 villages per commune, 2 communes per district). A village
shifts the satisfaction probability of its respondents by v ~ N(0, σ²) with
σ² = ICC·L(1 − L) (L the unit's level), so that two respondents of a village, whose answers
are Bernoulli(L + v + …) given v, have the intra-village correlation
Cov/Var = σ²/(L(1 − L)) = ICC on each item (exactly before probabilities are clipped to
[0.01, 0.995]; ``--icc``, default ``DEFAULT_ICC`` = 0.05). A village's effect depends on
(seed, unit, village) only. With 31 respondents a village multiplies a unit's variance by
about 1 + 30·ICC (2.5 at 0.05): design effects above 1.

The rows are those ``feedback.services.submit_response`` would store for the same answers
(value as sent, ``number`` for scale/number/yes-no, ``code`` for single choice, the request
digest), written directly for speed: the round may be closed and nothing is validated at
insert time (tests check the output against ``clean_answers``).

Determinism and identity: response ``i`` of seed ``S`` is always the same (its own random
stream). Its ``client_id`` encodes (S, i) under a fixed 48-bit prefix, which is how demo
responses are recognised (``delete_demo_responses``) and how a second run with the same seed
continues the sequence instead of repeating it: two runs of N add the same rows as one of 2N.
Its receipt is a bijection of (S mod 8,192,627, i) onto the receipt alphabet, so demo
receipts never collide with each other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import random
import threading
import time
import uuid
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from feedback import records
from feedback.models import RECEIPT_ALPHABET, Answer, Response, ResponseRecord
from surveys.models import Question, Round

# --- Identity of demo responses -------------------------------------------------------------

DEMO_PREFIX = 0x5195_DE30_DE30  # the top 48 bits of every demo client_id ("sipas demo")
SEED_BITS = 32
INDEX_BITS = 42
_LOW62 = (1 << 62) - 1
_RECEIPT_SPACE = len(RECEIPT_ALPHABET) ** 10
_INDEX_SPACE = 10**8  # receipts are distinct for indices below this, per seed
_RECEIPT_MULTIPLIER = 387_420_489_387_421  # coprime with 31: x ↦ a·x + b is a bijection
_RECEIPT_OFFSET = 123_456_789_012_345

DEFAULT_ICC = 0.05  # intra-village correlation of satisfied answers
VILLAGE_SIZE = 31  # respondents per village (SIPAS 2024: 36,525 in 1,170 villages)

BATCH_SIZE = 5_000
WRITERS = 2  # parallel connections on PostgreSQL
PROGRESS_EVERY = 50_000


def demo_client_id(seed: int, index: int) -> uuid.UUID:
    """The client_id of response ``index`` of ``seed``: an RFC 9562 version-8 UUID.

    Layout: 48-bit prefix, version 8, then (seed, index) in the 74 custom bits, in order, so
    the ids of one seed form a contiguous range sorted by index.
    """
    payload = (seed << INDEX_BITS) | index
    value = (
        (DEMO_PREFIX << 80)
        | (8 << 76)
        | ((payload >> 62) << 64)
        | (0b10 << 62)
        | (payload & _LOW62)
    )
    return uuid.UUID(int=value)


def demo_index(client_id: uuid.UUID) -> int:
    """The response index encoded in a demo client_id."""
    value = client_id.int
    payload = (((value >> 64) & 0xFFF) << 62) | (value & _LOW62)
    return payload & ((1 << INDEX_BITS) - 1)


def demo_client_id_range(seed: int | None = None) -> tuple[uuid.UUID, uuid.UUID]:
    """The smallest and largest demo client_id (of one seed, or of all seeds)."""
    if seed is None:
        return uuid.UUID(int=DEMO_PREFIX << 80), uuid.UUID(int=((DEMO_PREFIX + 1) << 80) - 1)
    return demo_client_id(seed, 0), demo_client_id(seed, (1 << INDEX_BITS) - 1)


def demo_receipt(seed: int, index: int) -> str:
    """A receipt such as ``K7Q2M-9XH4C``, distinct for every (seed mod 8,192,627, index)."""
    x = (seed % (_RECEIPT_SPACE // _INDEX_SPACE)) * _INDEX_SPACE + index
    x = (_RECEIPT_MULTIPLIER * x + _RECEIPT_OFFSET) % _RECEIPT_SPACE
    chars = []
    for _ in range(10):
        x, digit = divmod(x, len(RECEIPT_ALPHABET))
        chars.append(RECEIPT_ALPHABET[digit])
    return f"{''.join(chars[:5])}-{''.join(chars[5:])}"


def demo_responses(round_id: int, seed: int | None = None) -> Any:
    """The demo responses of a round (of one seed, or of all)."""
    low, high = demo_client_id_range(seed)
    return Response.objects.filter(round_id=round_id, client_id__range=(low, high))


# --- Unit levels ----------------------------------------------------------------------------

# Published 2022 SIPAS values (docs/scoring-method/national.md, "Demo data with villages"):
# the extremes and Đà Nẵng are pinned; Thái Nguyên from its policy and service figures; the other
# top/bottom five near the ends. Provincial SIPAS percentages.
PINNED_LEVELS = {
    "22": 87.59,  # Quảng Ninh, 1st
    "19": 86.26,  # Thái Nguyên, 2nd
    "96": 85.9,  # Cà Mau
    "74": 85.6,  # Bình Dương
    "38": 85.3,  # Thanh Hóa
    "48": 79.66,  # Đà Nẵng, 34/63
    "60": 74.4,  # Bình Thuận
    "04": 74.0,  # Cao Bằng
    "49": 73.6,  # Quảng Nam
    "06": 73.1,  # Bắc Kạn
    "20": 72.54,  # Lạng Sơn, 63rd
}
OTHER_LEVELS = (79.8, 2.6, 74.8, 85.0)  # mean, sd, clipped to [low, high]
# Item offsets and clipping leave generated SIPAS values about this many points below the
# level (measured on 50,000 responses): added to each level so that indices land near it.
CALIBRATION = 0.8


@dataclass(frozen=True)
class UnitProfile:
    unit_id: int
    code: str
    level: float  # target share (0–1) of satisfied answers
    policy_shift: float  # added to policy items, subtracted from service items
    mountainous: bool
    coastal: bool


def unit_levels(codes: Sequence[str], seed: int) -> dict[str, tuple[float, float]]:
    """(SIPAS level in %, policy-minus-service shift in points) per unit code, for a seed."""
    rng = random.Random(f"sipas-demo-levels:{seed}")
    mean, sd, low, high = OTHER_LEVELS
    levels = {}
    for code in sorted(codes):
        drawn = min(high, max(low, rng.gauss(mean, sd)))
        shift = rng.gauss(0.0, 1.2)
        levels[code] = (PINNED_LEVELS.get(code, drawn), shift)
    return levels


# --- One respondent -------------------------------------------------------------------------

Choices = tuple[tuple[Any, ...], tuple[float, ...]]


def _choices(*pairs: tuple[Any, float]) -> Choices:
    values = tuple(v for v, _w in pairs)
    total, cumulative = 0.0, []
    for _v, weight in pairs[:-1]:
        total += weight
        cumulative.append(total)
    scale = total + pairs[-1][1]
    return values, tuple(c / scale for c in cumulative)


def _pick(rng: random.Random, choices: Choices) -> Any:
    return choices[0][bisect(choices[1], rng.random())]


AGE = _choices(("18_25", 12), ("26_34", 18), ("35_49", 32), ("50_60", 20), ("tren_60", 18))
EDUCATION = _choices(
    ("tieu_hoc", 14), ("thcs", 27), ("thpt", 28), ("nghe", 13), ("dai_hoc", 16), ("khac", 2)
)
OCCUPATION = _choices(
    ("nghi_huu", 12),
    ("khong_di_lam", 10),
    ("tu_do", 38),
    ("sinh_vien", 4),
    ("khu_vuc_tu", 18),
    ("khu_vuc_cong", 12),
    ("khac", 6),
)
PARTICIPATION = _choices(
    ("khong_the_khong_biet", 10),
    ("khong_the_khong_muon", 5),
    ("co_the_neu_biet", 35),
    ("co_the_neu_tao_dieu_kien", 30),
    ("chac_chan", 20),
)
SUBMIT_CHANNEL = _choices(("truc_tiep", 55), ("truc_tuyen", 15), ("ca_hai", 30))
INFO_CHANNEL = _choices(("truc_tiep", 40), ("truc_tuyen", 25), ("ca_hai", 35))
EXPECTATION = _choices(("rat_nhieu", 42), ("nhieu", 42), ("it", 16))
# Q2 channels, each chosen independently (choice order kept, as clean_answers returns it).
INFO_SOURCES = (
    ("loa_xa", 0.45),
    ("hop_khu_dan_cu", 0.55),
    ("co_quan_cong_chuc", 0.25),
    ("nguoi_than", 0.35),
    ("dai_tv_bao", 0.6),
    ("internet", 0.45),
    ("khac", 0.03),
)
# Share answering "rất quan tâm" per policy group (2022: health 71.82 %, economy 57.07 %).
VERY_INTERESTED = (0.5707, 0.7182, 0.62, 0.6, 0.55, 0.58, 0.56, 0.62)
COMMENTS = (
    "Cần rút ngắn thời gian giải quyết hồ sơ.",
    "Mong cán bộ hướng dẫn rõ hơn.",
    "Nên mở rộng dịch vụ công trực tuyến.",
    "Cán bộ một cửa rất nhiệt tình.",
    "Đường giao thông trong thôn cần sửa chữa.",
    "Cần cải thiện chất lượng nước sinh hoạt.",
)
# Item offsets in points from the unit's level; policy contents and service elements
# average close to zero, participation and feedback handling lowest, as in 2023.
POLICY_OFFSETS = {
    "P01": 1.0, "P02": 0.0, "P03": -3.0, "P04": -3.0, "P05": -1.0, "P06": -2.0, "P07": 1.0,
    "P08": 3.0, "P09": 0.0, "P10": 4.0, "P11": 2.0, "P12": 1.0, "P13": -1.0, "P14": 0.0,
}  # fmt: skip
SERVICE_OFFSETS = {
    "S01": 0.0, "S02": 1.0, "S03": 2.0, "S04": 0.0, "S05": 1.0, "S06": 1.0, "S07": 2.0,
    "S08": -1.0, "S09": 2.0, "S10": 0.0, "S11": -1.0, "S12": 1.0, "S13": 1.0, "S14": -1.0,
    "S15": 1.0, "S16": 1.0, "S17": -1.0, "S18": -1.5, "S19": -2.0,
}  # fmt: skip
PERSONAL_SD = 0.08  # respondent effect on the probability of a satisfied answer
SHARE_OF_5 = 0.35  # of satisfied answers, the share "rất hài lòng"
MISSING_OPTIONAL = 0.05  # optional items left blank
MISSING_PROFILE = 0.08  # optional profile questions (A03–A10) left blank
SCREENER_RATES = {"Q8_1": 0.42, "Q8_2": 0.62, "Q8_3": 0.45, "Q8_5": 0.06, "Q8_6": 0.1, "Q8_7": 0.09}
PROCEDURE_IF_AGENCY, PROCEDURE_OTHERWISE = 0.78, 0.08  # Q8_4 given Q8_3 yes / no

SIPAS_CODES = (
    *(f"A{n:02d}" for n in range(1, 11)),
    *(f"Q1_{n}" for n in range(1, 9)),
    *("Q2", "Q3", "Q4", "Q5", "Q6", "Q7"),
    *(f"Q8_{n}" for n in range(1, 8)),
    *POLICY_OFFSETS,
    *SERVICE_OFFSETS,
    *(f"E{n:02d}" for n in range(1, 11)),
    "Q11",
)


def _satisfaction(rng: random.Random, p: float) -> int:
    """A 1–5 answer, satisfied (4 or 5) with probability ``p``."""
    u = rng.random()
    if u < p:
        return 5 if u < p * SHARE_OF_5 else 4
    v = (u - p) / (1.0 - p)
    return 3 if v < 0.62 else 2 if v < 0.9 else 1


def village_of(position: int) -> int:
    """The village (from 1) of a unit's respondent number ``position`` (from 0)."""
    return position // VILLAGE_SIZE + 1


def village_effect(seed: int, unit: UnitProfile, village: int, icc: float) -> float:
    """The village's shift of its respondents' satisfaction probability: N(0, ICC·L(1 − L))."""
    if icc <= 0:
        return 0.0
    rng = random.Random(f"sipas-demo-village:{seed}:{unit.code}:{village}")
    return rng.gauss(0.0, (icc * unit.level * (1 - unit.level)) ** 0.5)


def respondent_answers(
    rng: random.Random, unit: UnitProfile, village: int = 1, effect: float = 0.0
) -> list[tuple[str, Any]]:
    """One respondent's answers, in form order, as a client would send them, from
    ``village`` of the unit whose effect on satisfaction is ``effect``."""
    out: list[tuple[str, Any]] = []
    add = out.append
    blank = rng.random

    # Part A: sex and age band are required; the rest is sometimes left blank.
    add(("A01", "nu" if blank() < 0.51 else "nam"))
    add(("A02", _pick(rng, AGE)))
    if blank() >= MISSING_PROFILE:
        add(("A03", "kinh" if blank() < (0.6 if unit.mountainous else 0.92) else "khac"))
    if blank() >= MISSING_PROFILE:
        add(("A04", _pick(rng, EDUCATION)))
    if blank() >= MISSING_PROFILE:
        add(("A05", _pick(rng, OCCUPATION)))
    if blank() >= MISSING_PROFILE:
        add(("A06", "do_thi" if blank() < 0.35 else "nong_thon"))
    if blank() >= MISSING_PROFILE:
        u = blank()
        hills = 0.7 if unit.mountainous else 0.12
        islands = 0.03 if unit.coastal else 0.0
        add(("A07", "mien_nui" if u < hills else "hai_dao" if u < hills + islands else "dong_bang"))
    # Sampling frame: 3 villages per commune, 2 communes per district (as SIPAS 2024).
    # The draws that once placed a respondent at random are still made (and unused), so
    # that a seed's other answers stay as they were before villages.
    commune = (village - 1) // 3 + 1
    district = (commune - 1) // 2 + 1
    blank(), blank()
    if blank() >= MISSING_PROFILE:
        add(("A08", f"Huyện {district}"))
    if blank() >= MISSING_PROFILE:
        add(("A09", f"Xã {commune}"))
    if blank() >= MISSING_PROFILE:
        blank()
        add(("A10", f"Thôn {village}"))

    # Interest, information channels, participation.
    keen = rng.gauss(0.0, 0.1)
    for n, share in enumerate(VERY_INTERESTED, start=1):
        if blank() >= MISSING_OPTIONAL:
            p = share + keen
            u = blank()
            add((f"Q1_{n}", 3 if u < p else 2 if u < p + (1 - p) * 0.75 else 1))
    sources = [code for code, p in INFO_SOURCES if blank() < p]
    if sources:
        add(("Q2", sources))
    if blank() >= MISSING_OPTIONAL:
        add(("Q3", _pick(rng, PARTICIPATION)))

    # Integrity (mostly no harassment, no extra payment), preferred channels.
    mood = rng.gauss(0.0, PERSONAL_SD)
    clean = min(0.995, max(0.3, 0.9 + (unit.level - 0.8) * 0.6 + mood * 0.4))
    for code in ("Q4", "Q5"):
        if blank() >= MISSING_OPTIONAL:
            u = blank()
            add(
                (
                    code,
                    "khong_co" if u < clean else "nhieu" if u > 1 - (1 - clean) * 0.1 else "mot_so",
                )
            )
    if blank() >= MISSING_OPTIONAL:
        add(("Q6", _pick(rng, SUBMIT_CHANNEL)))
    if blank() >= MISSING_OPTIONAL:
        add(("Q7", _pick(rng, INFO_CHANNEL)))

    # Screeners: always answered; they decide which items follow.
    school = blank() < SCREENER_RATES["Q8_1"]
    clinic = blank() < SCREENER_RATES["Q8_2"]
    agency = blank() < SCREENER_RATES["Q8_3"]
    procedure = blank() < (PROCEDURE_IF_AGENCY if agency else PROCEDURE_OTHERWISE)
    add(("Q8_1", school))
    add(("Q8_2", clinic))
    add(("Q8_3", agency))
    add(("Q8_4", procedure))
    for code in ("Q8_5", "Q8_6", "Q8_7"):
        add((code, blank() < SCREENER_RATES[code]))

    base = unit.level + effect + mood
    policy = base + unit.policy_shift
    for code, offset in POLICY_OFFSETS.items():
        if (code == "P06" and not clinic) or (code == "P07" and not school):
            continue  # hidden by its display condition
        if blank() >= MISSING_OPTIONAL:
            add((code, _satisfaction(rng, min(0.995, max(0.01, policy + offset / 100)))))
    if procedure:
        service = base - unit.policy_shift
        for code, offset in SERVICE_OFFSETS.items():
            if blank() >= MISSING_OPTIONAL:
                add((code, _satisfaction(rng, min(0.995, max(0.01, service + offset / 100)))))

    for n in range(1, 11):
        if blank() >= MISSING_OPTIONAL:
            add((f"E{n:02d}", _pick(rng, EXPECTATION)))
    if blank() < 0.04:
        add(("Q11", COMMENTS[int(blank() * len(COMMENTS))]))
    return out


def respondent_rng(seed: int, index: int) -> random.Random:
    return random.Random((seed << INDEX_BITS) | index)


# --- Encoding rows --------------------------------------------------------------------------


def _copy_text(text: str) -> str:
    """A field of PostgreSQL's COPY text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Encoder:
    """Answer rows and digest fragments per (question, value), built once and reused."""

    def __init__(self, questions: dict[str, Question], *, copy: bool) -> None:
        self.questions = questions
        self.copy = copy
        self.rows: dict[tuple[str, Any], tuple[Any, str]] = {}

    def __call__(self, code: str, value: Any) -> tuple[Any, str]:
        key = (code, tuple(value) if isinstance(value, list) else value)
        entry = self.rows.get(key)
        if entry is None:
            entry = self.rows[key] = self._encode(code, value)
        return entry

    def _encode(self, code: str, value: Any) -> tuple[Any, str]:
        question = self.questions[code]
        kind = question.type
        number = None
        if kind in (Question.Type.SCALE, Question.Type.NUMBER, Question.Type.YESNO):
            number = (1.0 if value else 0.0) if isinstance(value, bool) else float(value)
        choice = value if kind == Question.Type.SINGLE else ""
        stored = json.dumps(value)  # as Django's JSONField writes it
        fragment = (
            json.dumps(code) + ":" + json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        )
        if self.copy:
            row = "\t".join(
                (
                    "",
                    str(question.pk),
                    _copy_text(stored),
                    "\\N" if number is None else repr(number),
                    _copy_text(choice),
                )
            )
            return row + "\n", fragment
        return (question.pk, stored, number, choice), fragment


@dataclass
class _Chunk:
    start: int
    responses: list[tuple[str, int, uuid.UUID, str, dt.datetime, str]]  # receipt, unit … psu
    answers: list[list[Any]]  # per response: encoded answer rows
    answer_count: int


def _chunks(
    *,
    plan: _Plan,
    seed: int,
    start: int,
    count: int,
    copy: bool,
    icc: float = DEFAULT_ICC,
) -> Iterator[_Chunk]:
    encode = _Encoder(plan.questions, copy=copy)
    round_json = json.dumps(plan.round_code, ensure_ascii=False)
    units = plan.units
    effects: dict[tuple[int, int], float] = {}  # (unit, village) → its effect
    for chunk_start in range(start, start + count, BATCH_SIZE):
        chunk_end = min(start + count, chunk_start + BATCH_SIZE)
        responses, answers, total = [], [], 0
        for index in range(chunk_start, chunk_end):
            rng = respondent_rng(seed, index)
            unit = units[index % len(units)]
            village = village_of(index // len(units))
            effect = effects.get((unit.unit_id, village))
            if effect is None:
                effect = effects[unit.unit_id, village] = village_effect(seed, unit, village, icc)
            psu = f"{unit.code}-T{village:02d}"
            sent = respondent_answers(rng, unit, village, effect)
            encoded = [encode(code, value) for code, value in sent]
            # request_digest's canonical JSON: fragments start with '"<code>":', and codes
            # need no escaping, so sorting fragments sorts the keys.
            canonical = (
                '{"answers":{'
                + ",".join(sorted(f for _r, f in encoded))
                + '},"psu":'
                + json.dumps(psu, ensure_ascii=False)
                + ',"round":'
                + round_json
                + ',"unit":'
                + unit.code_json
                + "}"
            )
            submitted = plan.opens_at + dt.timedelta(seconds=rng.random() * plan.span_seconds)
            responses.append(
                (
                    demo_receipt(seed, index),
                    unit.unit_id,
                    demo_client_id(seed, index),
                    hashlib.sha256(canonical.encode()).hexdigest(),
                    submitted,
                    psu,
                )
            )
            answers.append([r for r, _f in encoded])
            total += len(encoded)
        yield _Chunk(chunk_start, responses, answers, total)


def _prefetched(items: Iterator[_Chunk], depth: int = 2) -> Iterator[_Chunk]:
    """Iterate ``items`` in a thread, ``depth`` ahead: the next chunk is built while the
    database ingests this one (the builder touches no database connection)."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(item)
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put(exc)
            return
        buffer.put(done)

    thread = threading.Thread(target=produce, name="demo-data-builder", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(0.05)


# --- Writing --------------------------------------------------------------------------------


@dataclass
class _Plan:
    round_id: int
    round_code: str
    version_id: int
    questions: dict[str, Question]
    units: list[Any]  # _UnitRow
    opens_at: dt.datetime
    span_seconds: float


@dataclass(frozen=True)
class _UnitRow(UnitProfile):
    code_json: str = ""


@dataclass(frozen=True)
class DemoReport:
    created: int
    answers: int
    deleted: int
    seconds: float
    first_index: int
    skipped: bool = False


def _plan(survey_round: Round, seed: int, now: dt.datetime) -> _Plan:
    questions = {
        q.code: q
        for q in Question.objects.filter(version_id=survey_round.version_id).select_related(
            "show_if_question"
        )
    }
    missing = [code for code in SIPAS_CODES if code not in questions]
    if missing:
        raise ValidationError(
            {"round": [f"{survey_round.code} does not use the SIPAS questionnaire "
                       f"(no question {', '.join(missing[:5])})"]}
        )  # fmt: skip
    units = list(survey_round.units.order_by("code").values_list("id", "code", "region"))
    if not units:
        raise ValidationError({"round": [f"{survey_round.code} covers no unit"]})
    levels = unit_levels([code for _id, code, _r in units], seed)
    profiles = [
        _UnitRow(
            unit_id=pk,
            code=code,
            level=(levels[code][0] + CALIBRATION) / 100,
            policy_shift=levels[code][1] / 100,
            mountainous="miền núi" in region.lower() or "tây nguyên" in region.lower(),
            coastal="duyên hải" in region.lower() or "hồng" in region.lower(),
            code_json=json.dumps(code, ensure_ascii=False),
        )
        for pk, code, region in units
    ]
    end = min(survey_round.closes_at, now)
    span = max(0.0, (end - survey_round.opens_at).total_seconds() - 1)
    return _Plan(
        round_id=survey_round.pk,
        round_code=survey_round.code,
        version_id=survey_round.version_id,
        questions=questions,
        units=profiles,
        opens_at=survey_round.opens_at,
        span_seconds=span,
    )


def delete_demo_responses(*, round_id: int) -> int:
    """Delete the round's demo responses and their answers: two set-based DELETEs."""
    demo = demo_responses(round_id).values("pk")
    with transaction.atomic():
        ResponseRecord.objects.filter(response__in=demo).delete()  # compact records
        Answer.objects.filter(round_id=round_id, response__in=demo).delete()  # one DELETE
        # Responses still go through one DELETE … WHERE: their answers are gone, and the
        # collector would otherwise load every response to cascade.
        low, high = demo_client_id_range()
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {Response._meta.db_table} "
                "WHERE round_id = %s AND client_id BETWEEN %s AND %s",
                [round_id, *_db_uuid(low, high)],
            )
            return cursor.rowcount


def _db_uuid(*values: uuid.UUID) -> list[Any]:
    field = Response._meta.get_field("client_id")
    return [field.get_db_prep_value(v, connection) for v in values]


def generate_demo_responses(
    *,
    round_code: str,
    responses: int,
    seed: int,
    replace: bool = False,
    if_empty: bool = False,
    progress: Callable[[str], None] | None = None,
    icc: float = DEFAULT_ICC,
) -> DemoReport:
    """Add ``responses`` demo responses to the round (see the module docstring).

    ``replace`` first deletes the round's demo responses (any seed); ``if_empty`` does
    nothing when the round has any response at all; ``icc`` is the intra-village
    correlation. Each chunk of ``BATCH_SIZE`` responses is its own transaction, so memory
    stays flat and an interrupted run keeps whole responses only; the next run of the same
    seed continues after the last one stored.
    """
    if not 0 <= seed < 1 << SEED_BITS:
        raise ValidationError({"seed": [f"the seed must be in 0..{(1 << SEED_BITS) - 1}"]})
    if responses < 0:
        raise ValidationError({"responses": ["must not be negative"]})
    if not 0 <= icc < 1:
        raise ValidationError({"icc": ["the intra-village correlation must be in [0, 1)"]})
    say = progress or (lambda message: None)
    started = time.perf_counter()
    survey_round = Round.objects.filter(code=round_code).first()
    if survey_round is None:
        raise ValidationError({"round": [f"There is no survey round {round_code}."]})
    if if_empty and Response.objects.filter(round=survey_round).exists():
        say(f"{round_code}: already has responses, no demo data added")
        return DemoReport(0, 0, 0, time.perf_counter() - started, 0, skipped=True)

    deleted = delete_demo_responses(round_id=survey_round.pk) if replace else 0
    if deleted:
        say(f"{round_code}: {deleted:,} demo responses deleted")
    last = (
        demo_responses(survey_round.pk, seed)
        .order_by("-client_id")
        .values_list("client_id", flat=True)
        .first()
    )
    first = 0 if last is None else demo_index(last) + 1
    if first + responses > min(_INDEX_SPACE, 1 << INDEX_BITS):
        raise ValidationError({"responses": ["too many demo responses for one seed"]})
    plan = _plan(survey_round, seed, timezone.now())
    copy = connection.vendor == "postgresql"
    write = _write_copy if copy else _write_orm

    created = answers = 0
    next_report = PROGRESS_EVERY

    def count(chunk: _Chunk) -> None:
        nonlocal created, answers, next_report
        created += len(chunk.responses)
        answers += chunk.answer_count
        if created >= next_report or created == responses:
            rate = created / max(time.perf_counter() - started, 1e-9)
            say(f"{round_code}: {created:,}/{responses:,} responses, {answers:,} answers "
                f"({rate:,.0f} responses/s)")  # fmt: skip
            next_report += PROGRESS_EVERY

    chunks = _prefetched(
        _chunks(plan=plan, seed=seed, start=first, count=responses, copy=copy, icc=icc)
    )
    # PostgreSQL spends most of a chunk checking foreign keys at commit, one backend per
    # connection: WRITERS connections in parallel, each chunk its own transaction. Only
    # outside a transaction: other connections would not see uncommitted rows of this one.
    writers = WRITERS if copy and not connection.in_atomic_block else 1
    if writers == 1:
        for chunk in chunks:
            with transaction.atomic():
                write(plan, chunk)
            count(chunk)
    else:
        with ThreadPoolExecutor(writers, thread_name_prefix="demo-data-writer") as pool:
            pending: deque[Future] = deque()
            for chunk in chunks:
                pending.append(pool.submit(_write_on_own_connection, plan, chunk))
                while len(pending) > writers:
                    count(pending.popleft().result())
            while pending:
                count(pending.popleft().result())
    if copy and created:
        with connection.cursor() as cursor:  # fresh statistics for the planner
            cursor.execute(f"ANALYZE {Response._meta.db_table}, {Answer._meta.db_table}")
    return DemoReport(created, answers, deleted, time.perf_counter() - started, first)


RESPONSE_COLUMNS = (
    "id, receipt, round_id, version_id, unit_id, channel, client_id, request_digest, "
    "submitted_at, weight, psu"
)


def _write_on_own_connection(plan: _Plan, chunk: _Chunk) -> _Chunk:
    """Write a chunk in a worker thread, on that thread's connection, then close it."""
    try:
        with transaction.atomic():
            _write_copy(plan, chunk)
    finally:
        connection.close()
    return chunk


def _write_copy(plan: _Plan, chunk: _Chunk) -> None:
    """PostgreSQL: reserve the ids, then one COPY of responses and one of answers."""
    response_table, answer_table = Response._meta.db_table, Answer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [response_table, len(chunk.responses)],
        )
        ids = [str(pk) for (pk,) in cursor.fetchall()]
        fixed = f"\t{plan.round_id}\t{plan.version_id}\t"
        response_rows = "".join(
            f"{pk}\t{receipt}{fixed}{unit_id}\tpaper\t{client_id}\t{digest}\t"
            f"{submitted.isoformat()}\t1\t{_copy_text(psu)}\n"
            for pk, (receipt, unit_id, client_id, digest, submitted, psu) in zip(
                ids, chunk.responses, strict=True
            )
        )
        raw = cursor.cursor  # psycopg's cursor: COPY is not in Django's cursor API
        with raw.copy(f"COPY {response_table} ({RESPONSE_COLUMNS}) FROM STDIN") as copy:
            copy.write(response_rows)
        with raw.copy(
            f"COPY {answer_table} (response_id, round_id, question_id, value, number, code) "
            "FROM STDIN"
        ) as copy:
            # Each row is "<response id>\t<round id>\t…\n": the ids join the rows of their
            # response.
            copy.write(
                "".join(
                    f"{pk}\t{plan.round_id}".join(["", *rows])
                    for pk, rows in zip(ids, chunk.answers, strict=True)
                )
            )
    records.refresh(int(pk) for pk in ids)  # compact records, same transaction (issue 14)


def _write_orm(plan: _Plan, chunk: _Chunk) -> None:
    """Other databases: responses by bulk_create (ids returned), answers by executemany."""
    created = Response.objects.bulk_create(
        [
            Response(
                receipt=receipt,
                round_id=plan.round_id,
                version_id=plan.version_id,
                unit_id=unit_id,
                channel=Response.Channel.PAPER,
                client_id=client_id,
                request_digest=digest,
                submitted_at=submitted,
                weight=1.0,
                psu=psu,
            )
            for receipt, unit_id, client_id, digest, submitted, psu in chunk.responses
        ]
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {Answer._meta.db_table} "
            "(response_id, round_id, question_id, value, number, code) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (response.pk, plan.round_id, *row)
                for response, rows in zip(created, chunk.answers, strict=True)
                for row in rows
            ],
        )
    records.refresh(response.pk for response in created)  # compact records (issue 14)
