from django.db import migrations, models
from django.db.models.functions import MD5

# Tenant schemas cloned from the template got their unique constraint under a name PostgreSQL
# chose (metering_rollup_meter_id_customer_hour_group_key_key), not Django's: drop whatever
# unique constraint the table has in this schema, by lookup, instead of by name.
DROP_UNIQUE = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN
        SELECT c.conname FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = current_schema() AND t.relname = 'metering_rollup' AND c.contype = 'u'
    LOOP
        EXECUTE format('ALTER TABLE metering_rollup DROP CONSTRAINT %I', name);
    END LOOP;
END $$;
"""

# The same for the digest index (a schema cloned after this migration names it its own way).
DROP_UNIQUE_INDEX = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN
        SELECT i.relname FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = current_schema() AND t.relname = 'metering_rollup' AND x.indisunique
            AND NOT x.indisprimary
    LOOP
        EXECUTE format('DROP INDEX %I', name);
    END LOOP;
END $$;
"""


class Migration(migrations.Migration):
    """The rollup key holds a digest of group_key instead of group_key itself: a long group text
    made an index entry PostgreSQL refuses (54000), which stopped the drain of the whole tenant."""

    dependencies = [("metering", "0005_meter_allow_negative")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    DROP_UNIQUE
                    + "CREATE UNIQUE INDEX metering_rollup_key ON metering_rollup "
                    "(meter_id, customer, hour, md5(group_key));",
                    reverse_sql=DROP_UNIQUE_INDEX + "ALTER TABLE metering_rollup ADD CONSTRAINT "
                    "metering_rollup_key UNIQUE (meter_id, customer, hour, group_key);",
                )
            ],
            state_operations=[
                migrations.RemoveConstraint(model_name="rollup", name="metering_rollup_key"),
                migrations.AddConstraint(
                    model_name="rollup",
                    constraint=models.UniqueConstraint(
                        models.F("meter"), "customer", "hour", MD5("group_key"), name="metering_rollup_key"
                    ),
                ),
            ],
        )
    ]
