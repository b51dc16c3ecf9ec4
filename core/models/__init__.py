from core.models.outbox import OutboxMessage, OutboxStatus
from core.models.webhook import WebhookDelivery, WebhookEndpoint

__all__ = ["OutboxMessage", "OutboxStatus", "WebhookDelivery", "WebhookEndpoint"]
