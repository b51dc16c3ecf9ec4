from payments.models.bank import BankTransfer, LineOutcome, PaymentEmail, StatementImport, StatementLine
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
    "BankTransfer",
    "CollectionMethod",
    "GatewayEventRecord",
    "GatewaySettings",
    "LineOutcome",
    "Payment",
    "PaymentAttempt",
    "PaymentCustomer",
    "PaymentEmail",
    "PaymentStatus",
    "Refund",
    "StatementImport",
    "StatementLine",
]
