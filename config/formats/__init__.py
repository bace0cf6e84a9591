"""Date formats of the two languages where Django's own read badly (``FORMAT_MODULE_PATH``).

Django's ``en`` ``DATETIME_FORMAT`` ("Dec. 7, 2026, 11:57 p.m.") ends in a dot that doubles
with the end of a sentence, and its ``vi`` one capitalises "Ngày" in mid-sentence and pads
the day ("23:56 Ngày 07 tháng 12 năm 2026"). Every other format is Django's.
"""
