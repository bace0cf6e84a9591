"""Answers carry their response's round, and on PostgreSQL the answers and the compact
records are partitioned by round (``feedback.partitions``): one partition per existing
round and a DEFAULT one, rows kept. The records' triggers (``feedback.records``) are
dropped first and re-created on the new tables. SQLite: the column only.

Backward: plain tables again (rows kept), then the column goes."""

import django.db.models.deletion
from django.db import migrations, models


def drop_triggers(apps, schema_editor):
    from feedback import records

    records.drop_triggers(schema_editor.connection)


def create_triggers(apps, schema_editor):
    from feedback import records

    records.create_triggers(schema_editor.connection)


def create_triggers_before_rounds(apps, schema_editor):
    """Migrating back: the triggers of migration 0007, on answers without their round."""
    from feedback import records

    records.create_triggers(schema_editor.connection, by_round=False)


def partition(apps, schema_editor):
    from feedback import partitions

    partitions.partition_tables(schema_editor.connection)


def unpartition(apps, schema_editor):
    from feedback import partitions

    partitions.unpartition_tables(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0007_response_records"),
        ("surveys", "0006_sample_design_choices"),
    ]

    operations = [
        migrations.RunPython(drop_triggers, create_triggers_before_rounds),
        migrations.AddField(
            model_name="answer",
            name="round",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="surveys.round",
                verbose_name="survey round",
            ),
        ),
        migrations.RunSQL(
            "UPDATE feedback_answer SET round_id = (SELECT r.round_id FROM feedback_response r "
            "WHERE r.id = feedback_answer.response_id)",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="answer",
            name="round",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="surveys.round",
                verbose_name="survey round",
            ),
        ),
        migrations.RunPython(partition, unpartition),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
