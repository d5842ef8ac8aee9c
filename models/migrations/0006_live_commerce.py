from tortoise import migrations
from tortoise.migrations import operations as ops
from livecart.models.live import AuctionMode
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint

# Issue 18: flash deals, auctions and bids, idempotency keys, and the moments of a replay's timeline.
INDEXES = (
    ("auctions_idx_stream_id", "auctions", "stream_id"),
    ("flash_deals_idx_stream_product", "flash_deals", "stream_id, product_id"),
    ("deal_purchases_idx_deal_buyer", "deal_purchases", "deal_id, buyer_id"),
)


class Migration(migrations.Migration):
    dependencies = [('models', '0005_moderation')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Auction',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='auctions', on_delete=OnDelete.CASCADE)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='auctions', on_delete=OnDelete.RESTRICT)),
                ('starting_price', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('mode', fields.CharEnumField(description='SUDDEN_DEATH: sudden_death\nCOUNTER_BID: counter_bid', enum_type=AuctionMode, max_length=16)),
                ('window_seconds', fields.IntField(default=0)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('price', fields.DecimalField(null=True, max_digits=12, decimal_places=2)),
                ('leader', fields.ForeignKeyField('models.User', source_field='leader_id', null=True, db_constraint=True, to_field='id', related_name='leading', on_delete=OnDelete.RESTRICT)),
                ('leader_max', fields.DecimalField(null=True, max_digits=12, decimal_places=2)),
                ('bid_count', fields.IntField(default=0)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', null=True, db_constraint=True, to_field='id', related_name='auctions', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'auctions', 'app': 'models', 'indexes': [Index(fields=['stream_id'], name='auctions_idx_stream_id')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Bid',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('auction', fields.ForeignKeyField('models.Auction', source_field='auction_id', db_constraint=True, to_field='id', related_name='bids', on_delete=OnDelete.CASCADE)),
                ('bidder', fields.ForeignKeyField('models.User', source_field='bidder_id', db_constraint=True, to_field='id', related_name='bids', on_delete=OnDelete.RESTRICT)),
                ('amount', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('max_amount', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('proxy', fields.BooleanField(default=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'bids', 'app': 'models', 'indexes': [Index(fields=['auction_id', 'id'], name='bids_idx_auction')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FlashDeal',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='deals', on_delete=OnDelete.CASCADE)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='deals', on_delete=OnDelete.RESTRICT)),
                ('price', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('quantity', fields.IntField()),
                ('sold', fields.IntField(default=0)),
                ('per_buyer_limit', fields.IntField()),
                ('revenue', fields.DecimalField(default=0, max_digits=12, decimal_places=2)),
                ('opens_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'flash_deals', 'app': 'models', 'indexes': [Index(fields=['stream_id', 'product_id'], name='flash_deals_idx_stream_product')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DealPurchase',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('deal', fields.ForeignKeyField('models.FlashDeal', source_field='deal_id', db_constraint=True, to_field='id', related_name='purchases', on_delete=OnDelete.CASCADE)),
                ('buyer', fields.ForeignKeyField('models.User', source_field='buyer_id', db_constraint=True, to_field='id', related_name='deal_purchases', on_delete=OnDelete.RESTRICT)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='deal_purchases', on_delete=OnDelete.CASCADE)),
                ('quantity', fields.IntField()),
                ('amount', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'deal_purchases', 'app': 'models', 'indexes': [Index(fields=['deal_id', 'buyer_id'], name='deal_purchases_idx_deal_buyer')], 'pk_attr': 'id', 'table_description': "One buyer's units of one deal in one order: their sum per buyer is the per-buyer limit's count."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=100)),
                ('operation', fields.CharField(max_length=16)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', null=True, db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('bid', fields.ForeignKeyField('models.Bid', source_field='bid_id', null=True, db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'idempotency_keys', 'app': 'models', 'unique_together': (('user', 'key'),), 'pk_attr': 'id', 'table_description': 'A key a buyer sent with a purchase or a bid, and what it did: the first result, returned again.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StreamMoment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stream', fields.ForeignKeyField('models.LiveStream', source_field='stream_id', db_constraint=True, to_field='id', related_name='moments', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', null=True, db_constraint=True, to_field='id', related_name='moments', on_delete=OnDelete.CASCADE)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'stream_moments', 'app': 'models', 'indexes': [Index(fields=['stream_id', 'at'], name='stream_moments_idx_stream_at')], 'pk_attr': 'id', 'table_description': "A moment of a stream for its replay's timeline that no other row dates: a product featured."},
            bases=['Model'],
        ),
        ops.AddConstraint('Auction', CheckConstraint(check="mode IN ('sudden_death', 'counter_bid') AND starting_price > 0 AND (price IS NULL OR price >= starting_price) AND (leader_id IS NULL) = (price IS NULL)", name='auctions_valid')),
        ops.AddConstraint('FlashDeal', CheckConstraint(check='sold >= 0 AND sold <= quantity AND per_buyer_limit >= 1 AND price > 0 AND revenue >= 0', name='flash_deals_units_valid')),
        ops.AddConstraint('DealPurchase', CheckConstraint(check='quantity > 0 AND amount >= 0', name='deal_purchases_valid')),
        # On SQLite, AddConstraint rebuilds the table without its indexes (see 0003): make them again.
        ops.RunSQL([f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})" for name, table, columns in INDEXES]),
    ]
