from tortoise import fields, migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint

# A viewer is a person (issue 19): a user's, or one browser's, further tabs share one session and
# are counted in `tabs`; the session closes when the last tab leaves.
#
# On SQLite, Tortoise adds these by rebuilding stream_viewers, which comes back without its
# indexes (see 0003): they are made again, IF NOT EXISTS leaving PostgreSQL as it is.


class Migration(migrations.Migration):
    dependencies = [('models', '0006_live_commerce')]

    initial = False

    operations = [
        ops.AddField(model_name='StreamViewer', name='tabs', field=fields.IntField(default=1)),
        ops.AddField(model_name='StreamViewer', name='browser_id', field=fields.CharField(null=True, max_length=64)),
        ops.AddConstraint('StreamViewer', CheckConstraint(check='tabs >= 0', name='stream_viewers_tabs_not_negative')),
        ops.RunSQL([
            "CREATE INDEX IF NOT EXISTS stream_viewers_stream_id ON stream_viewers (stream_id, is_active)",
            "CREATE INDEX IF NOT EXISTS stream_viewers_idx_active_expiry ON stream_viewers (is_active, expires_at)",
        ]),
    ]
