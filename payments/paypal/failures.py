"""PayPal's reasons for not taking money, mapped onto the normalized failure codes.

PayPal says no in two shapes. A request it refuses answers 422 with an `issue` in `details`
(INSTRUMENT_DECLINED, TRANSACTION_REFUSED, PAYER_ACTION_REQUIRED…: Orders v2 error reference).
A capture that the processor declines comes back inside a COMPLETED order as a capture with status
DECLINED and `processor_response.response_code` (the SDK's ProcessorResponseCode enum lists them:
5120 INSUFFICIENT_FUNDS, 5400 EXPIRED_CARD, 9500 SUSPECTED_FRAUD…). Both are mapped here, and
only here.
"""

from __future__ import annotations

from payments.paypal.types import Failure, FailureCode

# Orders v2 / Payments v2 `issue` values.
_ISSUES: dict[str, FailureCode] = {
    # "The instrument presented was either declined by the processor or bank": the payer's
    # funding source may work later or after they fix it in their PayPal account.
    "INSTRUMENT_DECLINED": FailureCode.SOFT_DECLINE,
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED": FailureCode.SOFT_DECLINE,
    # PayPal's risk decision for this payer and merchant: retrying the same method is pointless.
    "TRANSACTION_REFUSED": FailureCode.HARD_DECLINE,
    "PAYER_CANNOT_PAY": FailureCode.HARD_DECLINE,
    "PAYEE_BLOCKED_TRANSACTION": FailureCode.HARD_DECLINE,
    "COMPLIANCE_VIOLATION": FailureCode.HARD_DECLINE,
    # The payer has to come back and approve or authenticate.
    "PAYER_ACTION_REQUIRED": FailureCode.AUTHENTICATION_REQUIRED,
    # The vaulted billing agreement was cancelled by the payer: the saved method is gone.
    "AGREEMENT_ALREADY_CANCELLED": FailureCode.EXPIRED,
}

# Processor response codes of a DECLINED capture.
_PROCESSOR: dict[str, FailureCode] = {
    "5120": FailureCode.INSUFFICIENT_FUNDS,
    "5400": FailureCode.EXPIRED,  # EXPIRED_CARD
    "1380": FailureCode.EXPIRED,  # INVALID_EXPIRATION
    "PPEF": FailureCode.EXPIRED,  # EXPIRED_FUNDING_INSTRUMENT
    "PPEX": FailureCode.EXPIRED,  # EXPIRY_DATE
    "5650": FailureCode.AUTHENTICATION_REQUIRED,  # DECLINED_SCA_REQUIRED
    "PCNR": FailureCode.AUTHENTICATION_REQUIRED,  # CONTINGENCIES_NOT_RESOLVED
    "0500": FailureCode.SOFT_DECLINE,  # DO_NOT_HONOR
    "5100": FailureCode.SOFT_DECLINE,  # GENERIC_DECLINE
    "9100": FailureCode.SOFT_DECLINE,  # DECLINED_PLEASE_RETRY
    "5710": FailureCode.SOFT_DECLINE,  # TX_ATTEMPTS_EXCEED_LIMIT
    "5920": FailureCode.SOFT_DECLINE,  # ISSUER_NOT_AVAILABLE_RETRIABLE
    "0390": FailureCode.HARD_DECLINE,  # ACCOUNT_NOT_FOUND
    "1330": FailureCode.HARD_DECLINE,  # INVALID_ACCOUNT
    "5140": FailureCode.HARD_DECLINE,  # CARD_CLOSED
    "5150": FailureCode.HARD_DECLINE,  # PICKUP_CARD_SPECIAL_CONDITIONS
    "5160": FailureCode.HARD_DECLINE,  # UNAUTHORIZED_USER
    "5180": FailureCode.HARD_DECLINE,  # INVALID_OR_RESTRICTED_CARD
    "5700": FailureCode.HARD_DECLINE,  # TRANSACTION_NOT_PERMITTED
    "5910": FailureCode.HARD_DECLINE,  # ISSUER_NOT_AVAILABLE_NOT_RETRIABLE
    "9500": FailureCode.HARD_DECLINE,  # SUSPECTED_FRAUD
    "9510": FailureCode.HARD_DECLINE,  # SECURITY_VIOLATION
    "9520": FailureCode.HARD_DECLINE,  # LOST_OR_STOLEN
    "9540": FailureCode.HARD_DECLINE,  # REFUSED_CARD
    "PP06": FailureCode.HARD_DECLINE,  # ACCOUNT_CLOSED
    "PPRN": FailureCode.HARD_DECLINE,  # REATTEMPT_NOT_PERMITTED
    "0960": FailureCode.PROCESSING_ERROR,  # SYSTEM_MALFUNCTION
    "8000": FailureCode.PROCESSING_ERROR,  # PROCESSOR_SYSTEM_ERROR
    "8100": FailureCode.PROCESSING_ERROR,  # FATAL_COMMUNICATION_ERROR
    "8110": FailureCode.PROCESSING_ERROR,  # RETRIABLE_COMMUNICATION_ERROR
    "8220": FailureCode.PROCESSING_ERROR,  # SYSTEM_UNAVAILABLE
    "PPER": FailureCode.PROCESSING_ERROR,  # INTERNAL_SYSTEM_ERROR
}


def failure_from_issue(issue: str | None, *, status_code: int, message: str = "") -> Failure:
    """The failure for an error response: 5xx (and 429) is PayPal being unavailable; a known
    issue maps by the table; any other 4xx is a request PayPal will not accept as sent."""
    if status_code >= 500 or status_code == 429:
        return Failure(FailureCode.GATEWAY_DOWN, issue or f"HTTP_{status_code}", message)
    if issue in _ISSUES:
        return Failure(_ISSUES[issue], issue, message)
    return Failure(FailureCode.PROCESSING_ERROR, issue or f"HTTP_{status_code}", message)


def failure_from_processor(response_code: str | None, *, message: str = "") -> Failure:
    """The failure of a DECLINED capture. An unknown code is a soft decline: the dunning schedule
    retries it a bounded number of times, which costs less than dropping a method that works."""
    code = response_code or "UNKNOWN"
    return Failure(_PROCESSOR.get(code, FailureCode.SOFT_DECLINE), code, message)
