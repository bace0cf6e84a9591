"""Agency codes become unique in the country.

Codes used by agencies of more than one unit (the demo centres were all ``TTPVHCC``) are
renamed ``<unit code>-<code>``, e.g. ``01-TTPVHCC``; a code already unique is kept, so a
client that used it goes on working. Going back keeps the renamed codes (they are still
unique within their unit).
"""

import django.core.validators
from django.db import migrations, models
from django.db.models import Count

CODE_FIELD = dict(
    verbose_name="code",
    max_length=50,
    validators=[
        django.core.validators.RegexValidator(
            "^[A-Za-z0-9][A-Za-z0-9_.\\-]*$",
            "Use letters, digits, '_', '.' or '-', starting with a letter or digit.",
        )
    ],
    help_text=(
        "Unique in the country: the unit's code, a hyphen, the agency's own code (e.g. 01-TTPVHCC)."
    ),
)


def prefix_shared_codes(apps, schema_editor):
    Agency = apps.get_model("surveys", "Agency")
    shared = (
        Agency.objects.values("code").annotate(units=Count("id")).filter(units__gt=1).values("code")
    )
    renamed = []
    for agency in Agency.objects.filter(code__in=shared).select_related("unit"):
        agency.code = f"{agency.unit.code}-{agency.code}"
        renamed.append(agency)
    taken = set(
        Agency.objects.filter(code__in=[a.code for a in renamed]).values_list("code", flat=True)
    )
    if taken:
        raise RuntimeError(
            "Cannot make agency codes unique: the new codes "
            f"{', '.join(sorted(taken))} are already used; rename these agencies first."
        )
    Agency.objects.bulk_update(renamed, ["code"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0003_question_personal_data"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="agency",
            name="agency_code_unique_in_unit",
        ),
        migrations.AlterField(
            model_name="agency", name="code", field=models.CharField(**CODE_FIELD)
        ),
        migrations.RunPython(prefix_shared_codes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="agency", name="code", field=models.CharField(unique=True, **CODE_FIELD)
        ),
    ]
