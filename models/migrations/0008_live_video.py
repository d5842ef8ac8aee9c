from tortoise import migrations
from tortoise import fields
from tortoise.migrations import operations as ops

# Live video (issue 14): whether media is arriving, and which publish session sends it. The stream
# key and playback id exist since 0001. On SQLite, Tortoise adds a column by rebuilding the table,
# which drops its indexes (see 0003): they are made again, IF NOT EXISTS leaving PostgreSQL as it is.
LIVE_STREAM_INDEXES = (
    ("live_streams_idx_status", "status, started_at"),
    ("live_streams_idx_vendor_id", "vendor_id, created_at"),
)


class Migration(migrations.Migration):
    dependencies = [('models', '0007_viewers_are_people')]

    initial = False

    operations = [
        ops.AddField(
            model_name='LiveStream',
            name='broadcasting',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='LiveStream',
            name='publisher',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.RunSQL([
            f"CREATE INDEX IF NOT EXISTS {name} ON live_streams ({columns})" for name, columns in LIVE_STREAM_INDEXES
        ]),
    ]
