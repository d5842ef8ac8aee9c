from tortoise import migrations
from tortoise.migrations import operations as ops
from livecart.models.commerce import OrderStatus
from livecart.models.engagement import InteractionType
from livecart.models.stream import StreamStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(unique=True, max_length=32)),
                ('password_hash', fields.CharField(max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuthToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'auth_tokens', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Only a SHA-256 of the token is kept, so a leaked table grants nothing.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Order',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('buyer', fields.ForeignKeyField('models.User', source_field='buyer_id', db_constraint=True, to_field='id', related_name='orders', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(default=OrderStatus.PLACED, description='PLACED: placed\nCANCELLED: cancelled', enum_type=OrderStatus, max_length=16)),
                ('total', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'orders', 'app': 'models', 'indexes': [Index(fields=['buyer_id', 'created_at'], name='orders_idx_buyer_id')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Vendor',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='vendor', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'vendors', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LiveStream',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='streams', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=200)),
                ('description', fields.TextField(null=True, unique=False)),
                ('status', fields.CharEnumField(default=StreamStatus.SCHEDULED, description='SCHEDULED: scheduled\nLIVE: live\nENDED: ended', enum_type=StreamStatus, max_length=16)),
                ('stream_key', fields.CharField(unique=True, max_length=64)),
                ('playback_id', fields.CharField(unique=True, max_length=32)),
                ('scheduled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('viewer_count', fields.IntField(default=0)),
                ('unique_viewers', fields.IntField(default=0)),
                ('peak_viewers', fields.IntField(default=0)),
                ('likes', fields.IntField(default=0)),
                ('dislikes', fields.IntField(default=0)),
                ('comment_count', fields.IntField(default=0)),
                ('order_count', fields.IntField(default=0)),
                ('items_sold', fields.IntField(default=0)),
                ('revenue', fields.DecimalField(default=0, max_digits=12, decimal_places=2)),
            ],
            options={'table': 'live_streams', 'app': 'models', 'indexes': [Index(fields=['status', 'started_at'], name='live_streams_idx_status'), Index(fields=['vendor_id', 'created_at'], name='live_streams_idx_vendor_id')], 'pk_attr': 'id', 'table_description': 'A stream and the running figures the API serves.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Product',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='products', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=200)),
                ('description', fields.TextField(null=True, unique=False)),
                ('price', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('stock', fields.IntField()),
                ('image_url', fields.CharField(null=True, max_length=1000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'products', 'app': 'models', 'indexes': [Index(fields=['vendor_id'], name='products_idx_vendor_id')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CartItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='cart_items', on_delete=OnDelete.CASCADE)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='cart_items', on_delete=OnDelete.CASCADE)),
                ('quantity', fields.IntField()),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', null=True, db_constraint=True, to_field='id', related_name='cart_items', on_delete=OnDelete.SET_NULL)),
                ('added_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'cart_items', 'app': 'models', 'unique_together': (('user', 'product'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OrderItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.CASCADE)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='order_items', on_delete=OnDelete.RESTRICT)),
                ('quantity', fields.IntField()),
                ('unit_price', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('amount', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', null=True, db_constraint=True, to_field='id', related_name='order_items', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'order_items', 'app': 'models', 'indexes': [Index(fields=['order_id'], name='order_items_idx_order_id')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SavedStream',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.OneToOneField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='saved', on_delete=OnDelete.CASCADE)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='saved_streams', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=200)),
                ('video_url', fields.CharField(max_length=1000)),
                ('duration_seconds', fields.IntField()),
                ('stats', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('streamed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('saved_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'saved_streams', 'app': 'models', 'indexes': [Index(fields=['vendor_id'], name='saved_streams_idx_vendor_id'), Index(fields=['streamed_at'], name='saved_streams_idx_streamed_at'), Index(fields=['saved_at'], name='saved_streams_idx_saved_at')], 'pk_attr': 'id', 'table_description': 'A replay kept when a stream ended with SAVE, with a snapshot of its figures in stats.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamInteraction',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='interactions', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='interactions', on_delete=OnDelete.CASCADE)),
                ('interaction_type', fields.CharEnumField(description='LIKE: like\nDISLIKE: dislike\nCOMMENT: comment', enum_type=InteractionType, max_length=16)),
                ('comment_text', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'stream_interactions', 'app': 'models', 'indexes': [Index(fields=['stream_id', 'user_id'], name='stream_interactions_idx_stream_user'), Index(fields=['stream_id', 'interaction_type'], name='stream_interactions_idx_stream_type'), Index(fields=['created_at'], name='stream_interactions_idx_created_at')], 'pk_attr': 'id', 'table_description': 'A like, dislike or comment. One reaction per (stream, user) is enforced by a'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamOrder',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='stream_orders', on_delete=OnDelete.CASCADE)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='stream_orders', on_delete=OnDelete.CASCADE)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='stream_orders', on_delete=OnDelete.RESTRICT)),
                ('vendor', fields.ForeignKeyField('models.Vendor', source_field='vendor_id', db_constraint=True, to_field='id', related_name='stream_orders', on_delete=OnDelete.RESTRICT)),
                ('buyer', fields.ForeignKeyField('models.User', source_field='buyer_id', db_constraint=True, to_field='id', related_name='stream_orders', on_delete=OnDelete.RESTRICT)),
                ('quantity', fields.IntField()),
                ('amount', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'stream_orders', 'app': 'models', 'indexes': [Index(fields=['stream_id'], name='stream_orders_idx_stream_id'), Index(fields=['vendor_id'], name='stream_orders_idx_vendor_id'), Index(fields=['created_at'], name='stream_orders_idx_created_at')], 'pk_attr': 'id', 'table_description': "A purchase attributed to the stream it was made on (the seller's figures)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamProduct',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='stream_products', on_delete=OnDelete.CASCADE)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='stream_products', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('highlighted', fields.BooleanField(default=False)),
                ('added_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'stream_products', 'app': 'models', 'unique_together': (('stream', 'product'),), 'pk_attr': 'id', 'table_description': 'A product offered on a stream, the highlighted one listed first.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamViewer',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='viewers', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='viewer_sessions', on_delete=OnDelete.SET_NULL)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('left_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('is_active', fields.BooleanField(default=True)),
            ],
            options={'table': 'stream_viewers', 'app': 'models', 'indexes': [Index(fields=['stream_id', 'is_active'], name='stream_viewers_stream_id'), Index(fields=['is_active', 'expires_at'], name='stream_viewers_idx_active_expiry')], 'pk_attr': 'id', 'table_description': 'One viewer session: the history of who watched, and when.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamViewerUser',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='viewer_users', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='watched_streams', on_delete=OnDelete.CASCADE)),
                ('first_joined_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'stream_viewer_users', 'app': 'models', 'unique_together': (('stream', 'user'),), 'pk_attr': 'id', 'table_description': 'The users who have watched a stream, once each: what makes uniqueViewers exact.'},
            bases=['Model'],
        ),
        # CreateModel leaves check constraints out: they are added one by one.
        ops.AddConstraint('User', CheckConstraint(check='length(username) >= 3', name='users_username_length')),
        ops.AddConstraint('Order', CheckConstraint(check='total >= 0', name='orders_total_not_negative')),
        ops.AddConstraint('LiveStream', CheckConstraint(check="status IN ('scheduled', 'live', 'ended')", name='live_streams_status_valid')),
        ops.AddConstraint('LiveStream', CheckConstraint(check='viewer_count >= 0 AND unique_viewers >= 0 AND peak_viewers >= viewer_count AND likes >= 0 AND dislikes >= 0 AND comment_count >= 0 AND order_count >= 0 AND items_sold >= 0 AND revenue >= 0', name='live_streams_counters_valid')),
        ops.AddConstraint('Product', CheckConstraint(check='stock >= 0', name='products_stock_not_negative')),
        ops.AddConstraint('Product', CheckConstraint(check='price > 0', name='products_price_positive')),
        ops.AddConstraint('CartItem', CheckConstraint(check='quantity BETWEEN 1 AND 100', name='cart_items_quantity_valid')),
        ops.AddConstraint('OrderItem', CheckConstraint(check='quantity > 0', name='order_items_quantity_positive')),
        ops.AddConstraint('SavedStream', CheckConstraint(check='duration_seconds >= 0', name='saved_streams_duration_valid')),
        ops.AddConstraint('StreamInteraction', CheckConstraint(check="interaction_type IN ('like', 'dislike', 'comment')", name='stream_interactions_type_valid')),
        ops.AddConstraint('StreamInteraction', CheckConstraint(check="(interaction_type = 'comment') = (comment_text IS NOT NULL)", name='stream_interactions_text_only_on_comments')),
        ops.AddConstraint('StreamOrder', CheckConstraint(check='quantity > 0', name='stream_orders_quantity_positive')),
        ops.AddConstraint('StreamOrder', CheckConstraint(check='amount >= 0', name='stream_orders_amount_not_negative')),
        ops.AddConstraint('StreamViewer', CheckConstraint(check='is_active = (left_at IS NULL)', name='stream_viewers_active_until_left')),
        # A partial unique index, which Tortoise cannot declare on SQLite: one reaction per
        # (stream, user), while a user may comment any number of times.
        ops.RunSQL(
            "CREATE UNIQUE INDEX stream_interactions_one_reaction ON stream_interactions (stream_id, user_id)"
            " WHERE interaction_type IN ('like', 'dislike')",
            reverse_sql="DROP INDEX stream_interactions_one_reaction",
        ),
    ]