"""Store citizens' responses: one function per state change.

``submit_response`` is the single path by which a response is stored, whatever the channel
(web, API, paper): it checks the round, unit and invitation, cleans the answers against the
round's questionnaire version, and stores the response with its answers and its compact
scoring record (``feedback.records``) in one transaction.
A repeated ``client_id`` returns the first response only to the client that stored it: the
request digest covers the content and, for an API account, the account, so the same key
with other content, from another account, or from an anonymous client replaying an
account's key, is a conflict (409) that shows nothing of the first response. Concurrent
repeats are settled by the unique index on ``client_id``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import DatabaseDefault
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django.utils.translation import gettext as _

from config.input_guard import text_problem
from feedback import records, signals
from feedback.errors import AnswersInvalid, ClientIdConflict, RoundClosed
from feedback.models import DESIGN_CODE_MAX_LENGTH, Answer, Invitation, Response
from feedback.selectors import Target, find_target, target_unchanged
from feedback.validation import CleanAnswer, clean_answers
from surveys.models import Agency, Question, Round, Unit
from surveys.selectors import agency_of_unit


@dataclass(frozen=True)
class Submission:
    response: Response
    created: bool
    answers_stored: int


@dataclass(frozen=True)
class _Sent:
    """What a submission sends besides its round, unit, agency, design and answers."""

    channel: str
    client_id: uuid.UUID | None
    digest: str
    weight: float
    import_batch_id: int | None
    account_id: int | None
    now: Any

    def response(
        self,
        survey_round: Round,
        unit: Unit,
        *,
        agency: Agency | None,
        psu: str,
        stratum: str,
        invitation: Invitation | None = None,
    ) -> Response:
        """The response to store, not saved yet."""
        return Response(
            round=survey_round,
            version=survey_round.version,
            unit=unit,
            agency=agency,
            channel=self.channel,
            client_id=self.client_id,
            request_digest=self.digest,
            invitation=invitation,
            submitted_at=self.now,
            weight=self.weight,
            psu=psu,
            stratum=stratum,
            import_batch_id=self.import_batch_id,
            submitted_by_id=self.account_id,
        )


def request_digest(
    *,
    round_code: str,
    unit_code: str,
    answers: dict[str, Any],
    account_id: int | None = None,
    design: dict[str, str] | None = None,
) -> str:
    """SHA-256 of what a client sent, independent of key order, and of who sent it.

    Anonymous clients are told apart by content only (the digest is what it was before
    accounts counted, so stored digests stay valid); an account's key is its own. The
    sample design (``psu``, ``stratum``) counts only when given, for the same reason.
    """
    sent: dict[str, Any] = {"round": round_code, "unit": unit_code, "answers": answers}
    if account_id is not None:
        sent["account"] = account_id
    sent |= {name: value for name, value in (design or {}).items() if value}
    canonical = json.dumps(
        sent, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    # surrogatepass: a lone surrogate is refused later, by validation, not here with a 500.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


# Published versions never change, so their questions are read once per process. The key
# holds the publication time too: a reused id (tests, a restored database) is a new key.
_QUESTIONS_CACHE: dict[tuple[int, Any], list[Question]] = {}
_QUESTIONS_CACHE_SIZE = 32


def round_questions(survey_round: Round) -> list[Question]:
    """The questions of the round's version in form order, with choices and conditions."""
    version = survey_round.version
    key = (version.pk, version.published_at)
    if version.published_at is not None and key in _QUESTIONS_CACHE:
        return _QUESTIONS_CACHE[key]
    questions = list(
        Question.objects.filter(version_id=version.pk)
        .select_related("section", "show_if_question")
        .prefetch_related("choices")
        .order_by("section__position", "section_id", "position", "id")
    )
    if version.status != version.Status.DRAFT and version.published_at is not None:
        if len(_QUESTIONS_CACHE) >= _QUESTIONS_CACHE_SIZE:
            _QUESTIONS_CACHE.clear()
        _QUESTIONS_CACHE[key] = questions
    return questions


def _repeat_or_conflict(client_id: uuid.UUID, digest: str) -> Submission | None:
    existing = Response.objects.filter(client_id=client_id).first()
    if existing is None:
        return None
    if existing.request_digest != digest:
        # Another content or another client: nothing of the first response is shown.
        raise ClientIdConflict(
            _("This client_id was already used for another response; send a new one.")
        )
    return Submission(existing, created=False, answers_stored=existing.answers.count())


# The round and unit of recent submissions, as read (per process, by their codes): a
# submission without an invitation is validated against them and stored by one statement
# that checks they are unchanged (``_submit_as_last_read``), without reading them first.
_TARGETS: dict[tuple[str, str], Target] = {}
_TARGETS_SIZE = 1024


def forget_targets() -> None:
    """Empty this process's copies of rounds and units read (the next submission to each
    reads them again)."""
    _TARGETS.clear()


def _remember_target(round_code: str, unit_code: str, survey_round: Round, unit: Unit) -> None:
    if len(_TARGETS) >= _TARGETS_SIZE:
        _TARGETS.clear()
    _TARGETS[(round_code, unit_code)] = Target(survey_round, unit)


def _submit_as_last_read(
    *,
    round_code: str,
    unit_code: str,
    agency_code: str,
    answers: dict[str, Any],
    psu: str,
    stratum: str,
    sent: _Sent,
) -> Submission | None:
    """Store a submission without an invitation in one round trip, or ``None`` for
    ``submit_response``'s full path, which then decides everything as if this had not run.

    The round and unit are the ones the last submission to them read
    (``_remember_target``); every check of the full path is made against them, and the
    single statement that stores the response stores it only if they are still what the
    database holds (``selectors.target_unchanged``) and the key is new (the unique index).
    Anything else (a check that fails, a changed round or unit, a used key, no
    single-message store) is left to the full path, so the answer to a bad or repeated
    submission is the full path's, in its order. In a caller's transaction, a savepoint
    keeps a used key's IntegrityError from aborting it.
    """
    target = _TARGETS.get((round_code, unit_code))
    if target is None or not stores_in_one_message():
        return None
    survey_round, unit = target.round, target.unit
    assert survey_round is not None and unit is not None
    if design_field_problems(psu=psu, stratum=stratum) or not storable_codes(agency=agency_code):
        return None
    if sent.channel != Response.Channel.PAPER and (
        not survey_round.is_open(sent.now) or not survey_round.allow_open_link
    ):
        return None
    try:
        agency = agency_of_unit(unit=unit, code=agency_code) if agency_code else None
    except ValidationError:
        return None
    cleaned, errors = clean_answers(round_questions(survey_round), answers)
    if errors:
        return None
    response = sent.response(survey_round, unit, agency=agency, psu=psu, stratum=stratum)
    try:
        with (
            transaction.atomic()
            if connection.in_atomic_block or signals.responses_watched()
            else nullcontext()
        ):
            stored = store_response(response, cleaned.values(), unless_changed=target)
    except IntegrityError:
        return None  # the key was used (or a receipt collided): the full path answers
    if not stored:
        _TARGETS.pop((round_code, unit_code), None)
        return None
    return Submission(response, created=True, answers_stored=len(cleaned))


def storable_codes(**codes: str) -> bool:
    """Whether every code is text the database can store (no such code can exist otherwise,
    and a query for it would fail)."""
    return not any(text_problem(code) for code in codes.values())


def resolve_target(
    *, round_code: str, unit_code: str, agency_code: str = "", found: Target | None = None
) -> tuple[Round, Unit, Agency | None]:
    """The round, unit and agency named by codes, or ``ValidationError`` naming the field.

    ``found`` is what ``find_target`` already read for the same round and unit codes.
    """
    codes = {"round": round_code, "unit": unit_code, "agency": agency_code}
    if unstorable := {
        name: [problem] for name, code in codes.items() if (problem := text_problem(code))
    }:
        raise ValidationError(unstorable)  # no such code can exist; the query itself would fail
    if found is None:
        found = find_target(round_code=round_code, unit_code=unit_code)
    survey_round, unit = found.round, found.unit
    if survey_round is None:
        raise ValidationError(
            {"round": [_("There is no survey round %(code)s.") % {"code": round_code}]}
        )
    if unit is None:
        raise ValidationError(
            {
                "unit": [
                    _("The round %(round)s does not cover a unit %(unit)s.")
                    % {"round": round_code, "unit": unit_code}
                ]
            }
        )
    agency = agency_of_unit(unit=unit, code=agency_code) if agency_code else None
    return survey_round, unit, agency


def design_field_problems(*, psu: str, stratum: str) -> dict[str, list[str]]:
    """Problems of a sample design as sent, by field: too long, or text that cannot be stored."""
    problems: dict[str, list[str]] = {}
    for name, value in (("psu", psu), ("stratum", stratum)):
        if problem := text_problem(value):
            problems[name] = [problem]
        elif len(value) > DESIGN_CODE_MAX_LENGTH:
            problems[name] = [
                _("Use at most %(max)d characters (this has %(length)d).")
                % {"max": DESIGN_CODE_MAX_LENGTH, "length": len(value)}
            ]
    return problems


def _design_with_invitation(
    invitation: Invitation | None, *, psu: str, stratum: str
) -> tuple[str, str]:
    """The PSU and stratum to store: the invitation's, unless it has none; a different
    non-empty value sent with the invitation is refused, never silently replaced."""
    if invitation is None:
        return psu, stratum
    mismatch = {
        "psu": _("This invitation is for the PSU %(code)s: send that code or leave psu out."),
        "stratum": _(
            "This invitation is for the stratum %(code)s: send that code or leave stratum out."
        ),
    }
    problems: dict[str, list[str]] = {}
    for name, sent, given in (
        ("psu", psu, invitation.psu),
        ("stratum", stratum, invitation.stratum),
    ):
        if sent and given and sent != given:
            problems[name] = [mismatch[name] % {"code": given}]
    if problems:
        raise ValidationError(problems)
    return psu or invitation.psu, stratum or invitation.stratum


def check_round_open(survey_round: Round, now: Any) -> None:
    """``RoundClosed`` unless the round accepts responses at ``now``."""
    if not survey_round.is_open(now):
        raise RoundClosed(
            _("The survey round %(round)s is not open (it runs from %(opens)s to %(closes)s).")
            % {
                "round": survey_round.code,
                "opens": timezone.localtime(survey_round.opens_at).date(),
                "closes": timezone.localtime(survey_round.closes_at).date(),
            }
        )


def submit_response(
    *,
    round_code: str,
    unit_code: str,
    answers: dict[str, Any],
    channel: str,
    client_id: uuid.UUID | None = None,
    agency_code: str = "",
    invitation_token: str = "",
    weight: float = 1.0,
    import_batch_id: int | None = None,
    account_id: int | None = None,
    psu: str = "",
    stratum: str = "",
    now: Any = None,
) -> Submission:
    """Validate and store one response; see the module docstring for the guarantees.

    ``account_id`` is the API (or ODK) account that sends it, ``None`` for an anonymous
    client; the response records it (``submitted_by``).
    ``psu`` and ``stratum`` are its sample design (``feedback.design``); with an
    invitation that has them, the invitation's are stored.
    """
    now = now or timezone.now()
    digest = request_digest(
        round_code=round_code,
        unit_code=unit_code,
        answers=answers,
        account_id=account_id,
        design={"psu": psu, "stratum": stratum},
    )
    sent = _Sent(channel, client_id, digest, weight, import_batch_id, account_id, now)
    if not invitation_token and (
        submission := _submit_as_last_read(
            round_code=round_code,
            unit_code=unit_code,
            agency_code=agency_code,
            answers=answers,
            psu=psu,
            stratum=stratum,
            sent=sent,
        )
    ):
        return submission
    # One read: the round, the unit and whether the key was used (unless a code cannot be
    # stored, which resolve_target refuses after the key is checked on its own).
    found = (
        find_target(round_code=round_code, unit_code=unit_code, client_id=client_id)
        if storable_codes(round=round_code, unit=unit_code)
        else None
    )
    if (
        client_id is not None
        and (found is None or found.client_id_used)
        and (repeat := _repeat_or_conflict(client_id, digest))
    ):
        return repeat
    if design_problems := design_field_problems(psu=psu, stratum=stratum):
        raise ValidationError(design_problems)

    survey_round, unit, agency = resolve_target(
        round_code=round_code, unit_code=unit_code, agency_code=agency_code, found=found
    )
    _remember_target(round_code, unit_code, survey_round, unit)
    if channel != Response.Channel.PAPER:
        check_round_open(survey_round, now)
    cleaned, errors = clean_answers(round_questions(survey_round), answers)
    if errors:
        raise AnswersInvalid(errors)

    # Without an invitation to claim, the only write is store_response's, on PostgreSQL one
    # message, which the server runs as a transaction of its own: no BEGIN and COMMIT round
    # trips. In a caller's transaction, a savepoint keeps a repeated key's IntegrityError
    # from aborting it.
    needs_block = (
        bool(invitation_token)
        or connection.in_atomic_block
        or not stores_in_one_message()
        or signals.responses_watched()  # receivers write in the response's transaction
    )
    try:
        with transaction.atomic() if needs_block else nullcontext():
            invitation = _claim_invitation(survey_round, unit, invitation_token, now)
            if invitation and invitation.agency and agency and agency != invitation.agency:
                # Rolls the claim back: the invitation stays unused.
                raise ValidationError(
                    {
                        "agency": [
                            _(
                                "This invitation is for the agency %(code)s: send that code "
                                "or leave the agency out."
                            )
                            % {"code": invitation.agency.code}
                        ]
                    }
                )
            psu, stratum = _design_with_invitation(invitation, psu=psu, stratum=stratum)
            if (
                invitation is None
                and not survey_round.allow_open_link
                and channel != Response.Channel.PAPER
            ):
                raise ValidationError(
                    {"token": [_("This survey round can only be answered with an invitation.")]}
                )
            response = sent.response(
                survey_round,
                unit,
                agency=agency or (invitation.agency if invitation else None),
                invitation=invitation,
                psu=psu,
                stratum=stratum,
            )
            store_response(response, cleaned.values())
    except IntegrityError:
        # Another request with the same client_id committed first: answer as it did.
        if client_id is not None and (repeat := _repeat_or_conflict(client_id, digest)):
            return repeat
        raise
    return Submission(response, created=True, answers_stored=len(cleaned))


# A response and its answers in one statement. The answers come as one JSON array of
# [question_id, value, number, code]: one json.dumps, instead of one per value.
_ANSWERS_WITH_RESPONSE = f"""
    WITH response AS ({{insert_response}} RETURNING id, round_id),
    answers AS (
        INSERT INTO {Answer._meta.db_table}
            (response_id, round_id, question_id, value, number, code)
        SELECT response.id, response.round_id, (a.answer->>0)::bigint, a.answer->1,
            (a.answer->>2)::double precision, a.answer->>3
        FROM response, jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS a (answer, position)
        ORDER BY a.position
    )
    SELECT id FROM response
"""


@functools.cache
def _insert_sql(columns: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(Response._meta.db_table)} ({', '.join(map(quote, columns))}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )


def response_insert(response: Response, *, where: str = "") -> tuple[str, list[Any]]:
    """The INSERT of a new response's row and its parameters, as Django's INSERT compiler
    writes them (each value prepared by its field, with ``pre_save``; a column left at its
    database default is left out), the SQL text built once per set of columns.

    With ``where`` (a condition whose parameters the caller adds), ``INSERT … SELECT``
    the values ``WHERE`` it holds: the row is stored only then.
    """
    meta = Response._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    values = [(f, f.pre_save(response, add=True)) for f in fields]
    if any(
        hasattr(value, "resolve_expression") and not isinstance(value, DatabaseDefault)
        for _f, value in values
    ):  # an expression: the compiler's own path
        assert not where, "a guarded INSERT takes plain values"
        query = InsertQuery(Response)
        query.insert_values(fields, [response])
        [(sql, params)] = query.get_compiler(connection=connection).as_sql()
        return sql, list(params)
    stored = [(f, value) for f, value in values if not isinstance(value, DatabaseDefault)]
    sql = _insert_sql(tuple(f.column for f, _v in stored))
    if where:
        into, _values = sql.split(" VALUES ", 1)
        sql = f"{into} SELECT {', '.join(['%s'] * len(stored))} WHERE {where}"
    return sql, [f.get_db_prep_save(value, connection) for f, value in stored]


def stores_in_one_message() -> bool:
    """Whether ``store_response`` sends its statements as one message (PostgreSQL with
    client-side parameter binding, Django's default: the simple query protocol runs several
    statements, in one implicit transaction unless the caller's is open)."""
    return connection.vendor == "postgresql" and not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("server_side_binding")


def store_response(
    response: Response, answers: Iterable[CleanAnswer], *, unless_changed: Target | None = None
) -> bool:
    """Insert a new response, its answers and its compact record (in the caller's
    transaction, or, on PostgreSQL outside one, in the transaction of its single message).

    On PostgreSQL one statement inserts the response and its answers, and one UPDATE
    completes the record the triggers inserted, its masks computed here from the answers
    (``feedback.records.record_update``: no answer is read back); both go in one message,
    one round trip. No model instance per answer, which was most of the cost of storing a
    response (see bench/ingest.py). The response's row is written by Django's own INSERT
    compiler, so defaults and field conversions are those of ``save()``; no
    ``pre_save``/``post_save`` signal is sent (none is connected to ``Response``).
    Elsewhere: ``save()``, one multi-row INSERT and the UPDATE.

    Once stored, ``signals.responses_created`` is sent (its receivers write in the same
    transaction; callers open one while ``signals.responses_watched()``).

    ``unless_changed`` (PostgreSQL, one message): the round and unit as read before, which
    the INSERT checks in the same statement (``selectors.target_unchanged``); if they
    changed, nothing is stored and the result is False.
    """
    answers = list(answers)
    layout = records.version_layout(response.version)
    scored = [(a.question.pk, a.number, a.code) for a in answers]
    response_table = Response._meta.db_table
    if connection.vendor != "postgresql":
        response.save(force_insert=True)
        insert_answers(response.pk, response.round_id, answers)
        record, record_params = records.record_update(
            layout, scored, where="response_id = %s AND round_id = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(record, [*record_params, response.pk, response.round_id])
        _announce(response)
        return True
    if unless_changed is None:
        insert_response, params = response_insert(response)
    else:
        assert stores_in_one_message()
        guard, guard_params = target_unchanged(unless_changed)
        insert_response, params = response_insert(response, where=guard)
        params += guard_params
    rows = json.dumps(
        [(a.question.pk, a.value, a.number, a.code) for a in answers], ensure_ascii=False
    )
    insert = _ANSWERS_WITH_RESPONSE.format(insert_response=insert_response)
    # The record is found by the receipt (unique) of the response the statement before stored.
    record, record_params = records.record_update(
        layout,
        scored,
        where=f"response_id = (SELECT id FROM {response_table} WHERE receipt = %s) "
        "AND round_id = %s",  # the round names the records' partition
    )
    with connection.cursor() as cursor:
        if stores_in_one_message():
            cursor.execute(
                f"{insert};\n{record}",
                [*params, rows, *record_params, response.receipt, response.round_id],
            )
            if (stored := cursor.fetchone()) is None:
                return False  # unless_changed: the round or unit changed
            (response.pk,) = stored
        else:
            cursor.execute(insert, [*params, rows])
            (response.pk,) = cursor.fetchone()
            cursor.execute(record, [*record_params, response.receipt, response.round_id])
    response._state.adding = False
    response._state.db = connection.alias
    _announce(response)
    return True


def _announce(response: Response) -> None:
    """Send ``responses_created`` for a response just stored (in its transaction)."""
    signals.responses_created.send(
        sender=Response, response_ids=[response.pk], round_id=response.round_id
    )


def insert_answers(response_id: int, round_id: int, answers: Iterable[CleanAnswer]) -> None:
    """Insert a response's answers with one multi-row INSERT (``store_response`` inserts
    them with the response on PostgreSQL)."""
    Answer.objects.bulk_create(
        Answer(
            response_id=response_id,
            round_id=round_id,
            question=a.question,
            value=a.value,
            number=a.number,
            code=a.code,
        )
        for a in answers
    )


def _claim_invitation(survey_round: Round, unit: Unit, token: str, now: Any) -> Invitation | None:
    """Mark the invitation used, atomically; a used, unknown or foreign token is refused."""
    if not token:
        return None
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .filter(token=token)
        .select_related("agency")
        .first()
    )
    if (
        invitation is None
        or invitation.round_id != survey_round.pk
        or invitation.unit_id != unit.pk
    ):
        raise ValidationError(
            {"token": [_("This invitation is not valid for this round and unit.")]}
        )
    claimed = Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(used_at=now)
    if not claimed:
        raise ValidationError({"token": [_("This invitation has already been used.")]})
    return invitation
