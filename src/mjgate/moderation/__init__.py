"""Moderation before money: operator-banned words checked before any charge, hits counted per user,
and users blocked for a while when they keep trying (see moderation/policy.py)."""
