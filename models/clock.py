"""The one clock the models read: aware UTC datetimes (a module of its own, so every model module
can import it without importing another model)."""
from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
