from django.db import migrations

CREATE = """
CREATE TABLE metering_event_id (
    event_id varchar(255) PRIMARY KEY,
    received_at timestamptz NOT NULL
);
CREATE INDEX metering_event_id_recv_idx ON metering_event_id (received_at);
CREATE TABLE metering_event (
    event_id varchar(255) NOT NULL,
    customer varchar(255) NOT NULL,
    event_type varchar(255) NOT NULL,
    "timestamp" timestamptz NOT NULL,
    properties jsonb NOT NULL,
    received_at timestamptz NOT NULL
) PARTITION BY RANGE ("timestamp");
CREATE INDEX metering_event_cust_type_ts ON metering_event (customer, event_type, "timestamp");
"""


class Migration(migrations.Migration):
    dependencies = [("metering", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, reverse_sql="DROP TABLE metering_event; DROP TABLE metering_event_id;")]
