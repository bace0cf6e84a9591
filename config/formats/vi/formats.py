"""Vietnamese dates as written in a sentence: "23:57 ngày 7 tháng 12 năm 2026"."""

DATE_FORMAT = r"\n\gà\y j \t\há\n\g n \nă\m Y"
DATETIME_FORMAT = r"H:i \n\gà\y j \t\há\n\g n \nă\m Y"
