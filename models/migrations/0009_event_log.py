from tortoise import migrations
from tortoise import fields
from tortoise.migrations import operations as ops

# Durable events (issue 15): the event log, written in the transaction of each change, numbered
# per stream in commit order by the counter row of event_streams (models/outbox.py).


class Migration(migrations.Migration):
    dependencies = [('models', '0008_live_video')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EventStream',
            fields=[
                ('stream_id', fields.IntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('last_seq', fields.BigIntField(default=0)),
                ('pruned_seq', fields.BigIntField(default=0)),
                ('epoch', fields.CharField(max_length=16)),
            ],
            options={'table': 'event_streams', 'app': 'models', 'pk_attr': 'stream_id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EventLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream_id', fields.IntField()),
                ('seq', fields.BigIntField()),
                ('type', fields.CharField(max_length=32)),
                ('payload', fields.TextField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'event_log', 'app': 'models', 'unique_together': (('stream_id', 'seq'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
