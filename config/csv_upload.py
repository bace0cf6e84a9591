"""Reading a CSV file staff upload (population margins, version mappings): its text, and
the ``{"file": [problems]}`` error that lists what is wrong with it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MOST_PROBLEMS = 50  # listed one by one; the rest are counted


def file_refused(problems: list[str]) -> ValidationError:
    """``ValidationError({"file": problems})``, with at most ``MOST_PROBLEMS`` of them."""
    if len(problems) > MOST_PROBLEMS:
        more = len(problems) - MOST_PROBLEMS
        problems = [*problems[:MOST_PROBLEMS], _("… and %(n)d more.") % {"n": more}]
    return ValidationError({"file": problems})


def uploaded_text(data: bytes | str, *, max_bytes: int) -> str:
    """The text of an uploaded file (UTF-8, without a byte order mark); ``file_refused``
    when it is larger than ``max_bytes`` or not UTF-8."""
    if len(data) > max_bytes:
        raise file_refused([_("The file is larger than %(n)d MB.") % {"n": max_bytes // 2**20}])
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise file_refused([_("The file is not UTF-8 text.")]) from None
    return data.lstrip("\ufeff")
