"""Operator alerts reach the admins' live stream (the console's banner reads them there)."""

from __future__ import annotations

from mjgate.events import EventBus
from mjgate.scheduler.alerts import Alerts


async def test_an_alert_is_logged_and_published_to_admin_subscribers():
    bus = EventBus()
    alerts = Alerts(bus)
    async with bus.subscribe(None) as everyone, bus.subscribe(7) as one_user:
        await alerts.emit("cooldown", 3, "sim", "channel sim cools down for 30 s after repeated failures")
        alert = everyone.get_nowait()
        assert {k: alert[k] for k in ("type", "event", "channel_id", "channel")} == {
            "type": "alert", "event": "cooldown", "channel_id": 3, "channel": "sim"}
        assert alert["message"].startswith("channel sim cools down") and alert["at"] > 0
        assert one_user.empty()  # a user's own stream carries no operator alerts
