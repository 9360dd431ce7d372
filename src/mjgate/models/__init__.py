"""One module per table; importing this package registers them all on Base.metadata."""

from mjgate.models.audit import AuditEntry
from mjgate.models.channel import Channel
from mjgate.models.idempotency import IdempotencyKey
from mjgate.models.ledger import LedgerEntry
from mjgate.models.moderation import BannedWord, ModerationHit, UserBlock
from mjgate.models.option import Option
from mjgate.models.outbox import WebhookDelivery
from mjgate.models.task import Task
from mjgate.models.token import ApiKey
from mjgate.models.user import User

__all__ = ["ApiKey", "AuditEntry", "BannedWord", "Channel", "IdempotencyKey", "LedgerEntry", "ModerationHit", "Option", "Task", "User", "UserBlock", "WebhookDelivery"]
