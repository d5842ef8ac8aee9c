from tortoise import migrations
from tortoise.migrations import operations as ops

# On SQLite, Tortoise adds a CHECK constraint (and a column) by rebuilding the table, and the
# rebuilt table comes back without the indexes 0001 made: on SQLite databases migrated by
# 0001-0002 only stream_interactions_one_reaction survived. IF NOT EXISTS leaves PostgreSQL,
# where they were never lost, as it is.
INDEXES = (
    ("orders_idx_buyer_id", "orders", "buyer_id, created_at"),
    ("order_items_idx_order_id", "order_items", "order_id"),
    ("products_idx_vendor_id", "products", "vendor_id"),
    ("live_streams_idx_status", "live_streams", "status, started_at"),
    ("live_streams_idx_vendor_id", "live_streams", "vendor_id, created_at"),
    ("saved_streams_idx_vendor_id", "saved_streams", "vendor_id"),
    ("saved_streams_idx_streamed_at", "saved_streams", "streamed_at"),
    ("saved_streams_idx_saved_at", "saved_streams", "saved_at"),
    ("stream_interactions_idx_stream_user", "stream_interactions", "stream_id, user_id"),
    ("stream_interactions_idx_stream_type", "stream_interactions", "stream_id, interaction_type"),
    ("stream_interactions_idx_created_at", "stream_interactions", "created_at"),
    ("stream_orders_idx_stream_id", "stream_orders", "stream_id"),
    ("stream_orders_idx_vendor_id", "stream_orders", "vendor_id"),
    ("stream_orders_idx_created_at", "stream_orders", "created_at"),
    ("stream_viewers_stream_id", "stream_viewers", "stream_id, is_active"),
    ("stream_viewers_idx_active_expiry", "stream_viewers", "is_active, expires_at"),
)


class Migration(migrations.Migration):
    dependencies = [('models', '0002_viewer_session_key')]

    initial = False

    operations = [
        ops.RunSQL([f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})" for name, table, columns in INDEXES]),
    ]
