"""Compact response records (feedback.records): the table, every record built from the
answers in one set-based pass (``feedback.records.rebuild``), then the triggers that keep a
record for every response and mark it stale when its answers change outside ``refresh``."""

import django.db.models.deletion
from django.db import migrations, models


def build_records(apps, schema_editor):
    """Every response's record from its answers, then the triggers (current code)."""
    from feedback import records

    records.rebuild(by_round=False)  # the answers' round comes with migration 0008
    records.create_triggers(schema_editor.connection, by_round=False)


def drop_triggers(apps, schema_editor):
    """Migrating back: the triggers go before the table they write to."""
    from feedback import records

    records.drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0006_sample_design"),
        ("surveys", "0006_sample_design_choices"),
    ]

    operations = [
        migrations.CreateModel(
            name="ResponseRecord",
            fields=[
                (
                    "response",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="record",
                        serialize=False,
                        to="feedback.response",
                    ),
                ),
                ("round_id", models.BigIntegerField()),
                ("version_id", models.BigIntegerField()),
                ("unit_id", models.BigIntegerField()),
                ("agency_id", models.BigIntegerField(null=True)),
                ("stratum", models.CharField(blank=True, max_length=64)),
                ("psu", models.CharField(blank=True, max_length=64)),
                ("weight", models.FloatField()),
                ("valid_0", models.BigIntegerField(default=0)),
                ("satisfied_0", models.BigIntegerField(default=0)),
                ("valid_1", models.BigIntegerField(null=True)),
                ("satisfied_1", models.BigIntegerField(null=True)),
                ("valid_2", models.BigIntegerField(null=True)),
                ("satisfied_2", models.BigIntegerField(null=True)),
                ("valid_3", models.BigIntegerField(null=True)),
                ("satisfied_3", models.BigIntegerField(null=True)),
                ("stale", models.BooleanField(default=False)),
            ],
            options={
                "verbose_name": "compact response record",
                "verbose_name_plural": "compact response records",
                "indexes": [
                    models.Index(fields=["round_id", "version_id"], name="record_round_version"),
                    models.Index(
                        condition=models.Q(("stale", True)),
                        fields=["round_id", "version_id"],
                        name="record_stale",
                    ),
                ],
            },
        ),
        migrations.RunPython(build_records, drop_triggers),
    ]
