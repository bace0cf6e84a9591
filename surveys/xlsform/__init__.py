"""Questionnaire versions in and out as XLSForm, the spreadsheet form design of ODK,
KoboToolbox and SurveyCTO (docs/xlsform.md)."""

from surveys.xlsform.common import XLSX_CONTENT_TYPE, code_of, value_of, value_text, xml_name
from surveys.xlsform.export import SHEET_COLUMNS, export_xlsform, xlsform_sheets
from surveys.xlsform.importer import ImportedVersion, import_xlsform, parse_xlsform
from surveys.xlsform.workbook import MAX_FILE_BYTES, Problem, XlsformRefused

__all__ = [
    "MAX_FILE_BYTES",
    "SHEET_COLUMNS",
    "XLSX_CONTENT_TYPE",
    "ImportedVersion",
    "Problem",
    "XlsformRefused",
    "code_of",
    "export_xlsform",
    "import_xlsform",
    "parse_xlsform",
    "value_of",
    "value_text",
    "xlsform_sheets",
    "xml_name",
]
