"""Default petition categories (Open311 services), editable in the admin afterwards.

Deadlines follow common practice for handling citizens' feedback on administrative
matters (about 10 working days); staff change them per category.
"""

from django.db import migrations

CATEGORIES = [
    ("thu-tuc", "Thủ tục hành chính", "Administrative procedures", "Hành chính", 10),
    ("can-bo", "Thái độ, tác phong của công chức", "Civil servants' conduct", "Hành chính", 10),
    ("phi-le-phi", "Phí, lệ phí, chi phí ngoài quy định", "Fees and charges", "Hành chính", 10),
    ("co-so", "Cơ sở vật chất nơi tiếp nhận hồ sơ", "Service office facilities", "Hành chính", 10),
    ("chinh-sach", "Chính sách, quy định", "Policies and regulations", "Chính sách", 15),
    ("ha-tang", "Đường sá, chiếu sáng, hạ tầng", "Roads, lighting, infrastructure", "Đô thị", 10),
    ("moi-truong", "Môi trường, rác thải", "Environment and waste", "Đô thị", 10),
    ("trat-tu", "Trật tự đô thị, an ninh", "Public order", "Đô thị", 10),
    ("khac", "Khác", "Other", "", 10),
]


def add_categories(apps, schema_editor):
    PetitionCategory = apps.get_model("feedback", "PetitionCategory")
    for position, (code, name_vi, name_en, group, days) in enumerate(CATEGORIES, start=1):
        PetitionCategory.objects.get_or_create(
            code=code,
            defaults={
                "name_vi": name_vi,
                "name_en": name_en,
                "group": group,
                "deadline_days": days,
                "position": position,
            },
        )


def remove_categories(apps, schema_editor):
    PetitionCategory = apps.get_model("feedback", "PetitionCategory")
    PetitionCategory.objects.filter(
        code__in=[c[0] for c in CATEGORIES], petitions__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("feedback", "0002_petitions")]
    operations = [migrations.RunPython(add_categories, remove_categories)]
