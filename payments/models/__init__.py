from payments.models.event import GatewayEventRecord
from payments.models.ledger import (
    CollectionMethod,
    Payment,
    PaymentAttempt,
    PaymentCustomer,
    PaymentStatus,
    Refund,
)
from payments.models.settings import GatewaySettings

__all__ = [
    "CollectionMethod",
    "GatewayEventRecord",
    "GatewaySettings",
    "Payment",
    "PaymentAttempt",
    "PaymentCustomer",
    "PaymentStatus",
    "Refund",
]
