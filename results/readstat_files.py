"""SPSS (``.sav``) and Stata (``.dta``) files written row by row with ReadStat.

``pyreadstat.write_sav``/``write_dta`` take a whole pandas or polars data frame (a round of
a million responses would be held whole in the worker), and the project depends on neither
library at run time. The ReadStat C library they wrap writes row by row: the number of rows
is declared first, then each row's values are inserted and written out. pyreadstat's writer
extension carries ReadStat and exports its C functions, so they are called here through
``ctypes``, with pyreadstat's copy of the library (the version locked in ``uv.lock``): a file
of any size is written holding one row, the variables and their labels.

Nothing grows with the number of rows. One limit: Stata's text variables hold 2,045 bytes;
a longer one would be a ``strL``, whose values ReadStat must be given before the first row
(all of them held in memory), so a longer text is cut at 2,045 bytes in a ``.dta`` (at a
character boundary) and the file's notes say so; SPSS holds 32,767 bytes.

``write_file(path, kind, variables, rows, row_count)``: ``variables`` say each column's name,
type, label, value labels and missing codes; ``rows`` give, per row, one value per variable:
a number, a text, ``None`` (system missing), or a ``Missing`` (a reason why it is missing,
written as the variable's SPSS user-missing code or as a Stata extended missing value).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

SAV = "sav"
DTA = "dta"

# readstat_type_t, readstat_measure_t, readstat_compress_t (readstat.h)
_STRING, _DOUBLE = 0, 5
_MEASURES = {"nominal": 1, "ordinal": 2, "scale": 3}
_COMPRESS_ROWS = 1
DTA_VERSION = 118  # Stata 14 and later: UTF-8 text, variable labels of 80 characters
DTA_MAX_STR = 2045  # longer text is a strL in Stata
SAV_MAX_STR = 32767
# Days between the epochs: SPSS counts seconds from 1582-10-14, Stata from 1960-01-01.
_SPSS_EPOCH = dt.datetime(1582, 10, 14)
_STATA_EPOCH = dt.datetime(1960, 1, 1)


@dataclass(frozen=True)
class Missing:
    """A reason a value is missing, by its Stata tag (``a`` is written ``.a``)."""

    tag: str


@dataclass
class Variable:
    """One column: ``kind`` is "number", "text", "date" or "datetime"."""

    name: str
    kind: str
    label: str = ""
    width: int = 1  # bytes, for text
    value_labels: dict[float, str] = field(default_factory=dict)
    # SPSS: the number written for each reason's tag (declared user-missing and labelled);
    # Stata: the tags labelled (the value is the extended missing value ``.<tag>``).
    missing_codes: dict[str, float] = field(default_factory=dict)
    measure: str = ""
    format: str = ""  # display format; datetimes and dates get theirs


class ReadstatError(RuntimeError):
    pass


_DataWriter = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)


def _library() -> ctypes.CDLL:
    from pyreadstat import _readstat_writer  # imported at the first file (a worker's memory)

    lib = ctypes.CDLL(_readstat_writer.__file__)
    p, s, i, d, c = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_double, ctypes.c_char
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "readstat_writer_init": (p, []),
        "readstat_writer_free": (None, [p]),
        "readstat_set_data_writer": (i, [p, _DataWriter]),
        "readstat_writer_set_file_label": (i, [p, s]),
        "readstat_writer_set_file_format_version": (i, [p, ctypes.c_uint8]),
        "readstat_writer_set_compression": (i, [p, i]),
        "readstat_add_note": (None, [p, s]),
        "readstat_add_variable": (p, [p, s, i, ctypes.c_size_t]),
        "readstat_variable_set_label": (None, [p, s]),
        "readstat_variable_set_format": (None, [p, s]),
        "readstat_variable_set_measure": (None, [p, i]),
        "readstat_variable_set_label_set": (None, [p, p]),
        "readstat_variable_add_missing_double_value": (i, [p, d]),
        "readstat_add_label_set": (p, [p, i, s]),
        "readstat_label_double_value": (None, [p, d, s]),
        "readstat_label_tagged_value": (None, [p, c, s]),
        "readstat_begin_writing_sav": (i, [p, p, ctypes.c_long]),
        "readstat_begin_writing_dta": (i, [p, p, ctypes.c_long]),
        "readstat_validate_metadata": (i, [p]),
        "readstat_validate_variable": (i, [p, p]),
        "readstat_begin_row": (i, [p]),
        "readstat_insert_double_value": (i, [p, p, d]),
        "readstat_insert_string_value": (i, [p, p, s]),
        "readstat_insert_missing_value": (i, [p, p]),
        "readstat_insert_tagged_missing_value": (i, [p, p, c]),
        "readstat_end_row": (i, [p]),
        "readstat_end_writing": (i, [p]),
        "readstat_error_message": (s, [i]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _library()
    return _lib


def _check(code: int, what: str) -> None:
    if code:
        message = library().readstat_error_message(code).decode()
        raise ReadstatError(f"{what}: {message}")


def _encoded(text: str, width: int) -> bytes:
    """UTF-8 bytes of ``text``, cut at a character boundary to at most ``width`` bytes."""
    data = text.encode("utf-8", "replace")
    if len(data) <= width:
        return data
    return data[:width].decode("utf-8", "ignore").encode()


def _lines(text: str, width: int) -> list[bytes]:
    """``text`` in lines of at most ``width`` UTF-8 bytes, broken between words."""
    lines: list[bytes] = []
    line = b""
    for word in text.split():
        data = _encoded(word, width)
        if line and len(line) + 1 + len(data) > width:
            lines.append(line)
            line = b""
        line = line + b" " + data if line else data
    return [*lines, line] if line else lines


def _seconds(value: dt.datetime, epoch: dt.datetime) -> float:
    """Whole milliseconds since ``epoch`` in seconds (Stata's resolution, kept for both)."""
    delta = value.replace(tzinfo=None) - epoch
    return (delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000) / 1000


def write_file(
    path: Path,
    kind: str,
    variables: Sequence[Variable],
    rows: Iterable[Sequence[Any]],
    row_count: int,
    *,
    file_label: str = "",
    notes: Sequence[str] = (),
    missing_labels: dict[str, str] | None = None,
) -> None:
    """Write ``row_count`` ``rows`` of ``variables`` as an SPSS or Stata file at ``path``.

    ``missing_labels``: the value label of each reason's tag. Rows past ``row_count`` are
    left out; fewer rows raise ``ReadstatError``.
    """
    lib = library()
    with path.open("wb") as handle:
        sink = _sink(handle)
        writer = lib.readstat_writer_init()
        try:
            _check(lib.readstat_set_data_writer(writer, sink), "data writer")
            _write(
                lib, writer, kind, variables, rows, row_count, file_label, notes,
                missing_labels or {},
            )  # fmt: skip
        finally:
            lib.readstat_writer_free(writer)


def _sink(handle: BinaryIO) -> Any:
    def write(data: int, length: int, _ctx: int) -> int:
        return handle.write(ctypes.string_at(data, length))

    return _DataWriter(write)


def _write(
    lib: ctypes.CDLL,
    writer: int,
    kind: str,
    variables: Sequence[Variable],
    rows: Iterable[Sequence[Any]],
    row_count: int,
    file_label: str,
    notes: Sequence[str],
    missing_labels: dict[str, str],
) -> None:
    stata = kind == DTA
    if file_label:
        _check(lib.readstat_writer_set_file_label(writer, file_label.encode()[:80]), "label")
    for note in notes:
        for line in _lines(note, 80):  # SPSS documents are lines of 80 bytes
            lib.readstat_add_note(writer, line)
    if stata:
        _check(lib.readstat_writer_set_file_format_version(writer, DTA_VERSION), "version")
    else:
        _check(lib.readstat_writer_set_compression(writer, _COMPRESS_ROWS), "compression")
    handles = []
    widths: list[int] = []
    for number, variable in enumerate(variables):
        text = variable.kind == "text"
        width = min(max(1, variable.width), DTA_MAX_STR if stata else SAV_MAX_STR) if text else 0
        widths.append(width)
        storage = _STRING if text else _DOUBLE
        handle = lib.readstat_add_variable(writer, variable.name.encode(), storage, width)
        if variable.label:
            label = variable.label[:80] if stata else variable.label
            lib.readstat_variable_set_label(handle, _encoded(label, 320 if stata else 255))
        display = variable.format or {
            ("date", False): "DATE11",
            ("date", True): "%td",
            ("datetime", False): "DATETIME23.3",
            ("datetime", True): "%tc",
        }.get((variable.kind, stata), "")
        if display:
            lib.readstat_variable_set_format(handle, display.encode())
        if variable.measure and not stata:
            lib.readstat_variable_set_measure(handle, _MEASURES[variable.measure])
        if not text and (variable.value_labels or variable.missing_codes):
            labels = lib.readstat_add_label_set(writer, _DOUBLE, f"L{number}".encode())
            for value, label in variable.value_labels.items():
                lib.readstat_label_double_value(labels, float(value), _encoded(label, 120))
            for tag, code in variable.missing_codes.items():
                label = _encoded(missing_labels.get(tag, tag), 120)
                if stata:
                    lib.readstat_label_tagged_value(labels, tag.encode(), label)
                else:
                    lib.readstat_label_double_value(labels, code, label)
            lib.readstat_variable_set_label_set(handle, labels)
        if not stata:
            for code in variable.missing_codes.values():
                _check(lib.readstat_variable_add_missing_double_value(handle, code), variable.name)
        handles.append(handle)

    begin = lib.readstat_begin_writing_dta if stata else lib.readstat_begin_writing_sav
    _check(begin(writer, None, row_count), "begin")
    _check(lib.readstat_validate_metadata(writer), "metadata")
    for variable, handle in zip(variables, handles, strict=True):
        _check(lib.readstat_validate_variable(writer, handle), f"variable {variable.name}")

    epoch = _STATA_EPOCH if stata else _SPSS_EPOCH
    day = 1 if stata else 86_400
    written = 0
    insert_double = lib.readstat_insert_double_value
    insert_string = lib.readstat_insert_string_value
    insert_missing = lib.readstat_insert_missing_value
    insert_tagged = lib.readstat_insert_tagged_missing_value
    begin_row, end_row = lib.readstat_begin_row, lib.readstat_end_row
    isfinite = math.isfinite
    # per variable: its kind, handle, text width, SPSS codes (the loop below runs per cell)
    writer = ctypes.c_void_p(writer)  # converted once, not at each call
    plan = [
        (v.kind, ctypes.c_void_p(h), w, v.missing_codes, v.name)
        for v, h, w in zip(variables, handles, widths, strict=True)
    ]
    for row in rows:
        if written == row_count:
            break  # rows added after the count was taken are left out
        _check(begin_row(writer), "row")
        for (kind, handle, width, codes, name), value in zip(plan, row, strict=True):
            kind_of_value = type(value)
            if value is None:
                code = insert_missing(writer, handle)
            elif kind_of_value is Missing:
                if stata:
                    code = insert_tagged(writer, handle, value.tag.encode())
                elif value.tag in codes:
                    code = insert_double(writer, handle, codes[value.tag])
                else:
                    code = insert_missing(writer, handle)
            elif kind == "number":
                if kind_of_value is not float:
                    value = float(value)
                code = (
                    insert_double(writer, handle, value)
                    if isfinite(value)
                    else insert_missing(writer, handle)
                )
            elif kind == "text":
                data = value.encode("utf-8", "replace") if kind_of_value is str else b""
                if kind_of_value is not str or len(data) > width:
                    data = _encoded(str(value), width)
                code = insert_string(writer, handle, data)
            elif kind == "datetime":
                seconds = _seconds(value, epoch)
                code = insert_double(writer, handle, seconds * 1000 if stata else seconds)
            else:  # a date
                code = insert_double(writer, handle, float((value - epoch.date()).days * day))
            if code:
                _check(code, f"value of {name}")
        _check(end_row(writer), "row")
        written += 1
    if written != row_count:
        raise ReadstatError(f"{written} rows written, {row_count} declared")
    _check(lib.readstat_end_writing(writer), "end")
