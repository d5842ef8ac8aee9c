"""Viewers, reactions and chat in the schema."""
from __future__ import annotations

import strawberry


@strawberry.type
class EngagementFields:
    """LiveStream's viewer-side fields (counts, reactions, comments), mixed into LiveStream."""
