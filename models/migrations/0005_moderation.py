from tortoise import migrations
from tortoise.migrations import operations as ops
from livecart.models.moderation import ActionKind, RestrictionKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint

class Migration(migrations.Migration):
    dependencies = [('models', '0004_username_folded')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BlockedTerm',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='blocked_terms', on_delete=OnDelete.CASCADE)),
                ('term', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'blocked_terms', 'app': 'models', 'unique_together': (('vendor', 'term'),), 'pk_attr': 'id', 'table_description': "A word or phrase refused in the vendor's chats, kept normalised (see normalise)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChatRestriction',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='chat_restrictions', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='chat_restrictions', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='TIMEOUT: timeout\nBAN: ban', enum_type=RestrictionKind, max_length=16)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='restrictions_made', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'chat_restrictions', 'app': 'models', 'unique_together': (('vendor', 'user'),), 'constraints': [CheckConstraint(check="kind IN ('timeout', 'ban')", name='chat_restrictions_kind_valid'), CheckConstraint(check="(kind = 'ban') = (ends_at IS NULL)", name='chat_restrictions_end_only_on_timeouts')], 'pk_attr': 'id', 'table_description': "A timeout (until ends_at) or a ban (no end) on one user's chat and reactions on one"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ModerationAction',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='moderation_actions', on_delete=OnDelete.CASCADE)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', null=True, db_constraint=True, to_field='id', related_name='moderation_actions', on_delete=OnDelete.SET_NULL)),
                ('actor', fields.ForeignKeyField('models.User', source_field='actor_id', null=True, db_constraint=True, to_field='id', related_name='moderation_actions', on_delete=OnDelete.SET_NULL)),
                ('action', fields.CharEnumField(description='DELETE_COMMENT: delete_comment\nTIMEOUT: timeout\nBAN: ban\nLIFT: lift\nADD_MODERATOR: add_moderator\nREMOVE_MODERATOR: remove_moderator\nSLOW_MODE: slow_mode\nHOLD_LINKS: hold_links\nBLOCK_TERMS: block_terms\nUNBLOCK_TERMS: unblock_terms\nPIN: pin\nUNPIN: unpin\nAPPROVE: approve\nREJECT: reject', enum_type=ActionKind, max_length=32)),
                ('target_user', fields.ForeignKeyField('models.User', source_field='target_user_id', null=True, db_constraint=True, to_field='id', related_name='moderation_targets', on_delete=OnDelete.SET_NULL)),
                ('comment_id', fields.IntField(null=True)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('detail', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'moderation_actions', 'app': 'models', 'indexes': [Index(fields=['vendor_id', 'created_at'], name='moderation_actions_idx_vendor_created')], 'pk_attr': 'id', 'table_description': 'The audit trail: who did what, to whom, when and why.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamChat',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.OneToOneField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='chat', on_delete=OnDelete.CASCADE)),
                ('slow_mode_seconds', fields.IntField(default=0)),
                ('hold_links', fields.BooleanField(default=False)),
                ('pinned_comment', fields.ForeignKeyField('models.StreamInteraction', source_field='pinned_comment_id', null=True, db_constraint=True, to_field='id', related_name='pinned_in', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'stream_chats', 'app': 'models', 'constraints': [CheckConstraint(check='slow_mode_seconds = 0 OR (slow_mode_seconds >= 3 AND slow_mode_seconds <= 120)', name='stream_chats_slow_mode_valid')], 'pk_attr': 'id', 'table_description': "A stream's chat settings. No row means the defaults: no slow mode, nothing held, no pin."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VendorModerator',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='moderators', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='moderator_of', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'vendor_moderators', 'app': 'models', 'unique_together': (('vendor', 'user'),), 'pk_attr': 'id', 'table_description': "A user the vendor's owner appointed to moderate the chat of the vendor's streams."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='StreamInteraction',
            name='held_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
