"""What the floor above (payments) adds to invoicing's transactions without invoicing importing
it. payments registers its collection in PaymentsConfig.ready(); until then nothing is added."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from invoicing.models import Invoice

FinalizedHook = Callable[[Sequence[Invoice]], None]

_finalized: list[FinalizedHook] = []


def finalized_hook_add(hook: FinalizedHook) -> None:
    """`hook(invoices)` runs inside the finalizing transaction with the chunk's newly finalized
    invoices (their organizations loaded): what it writes commits or rolls back with them."""
    if hook not in _finalized:
        _finalized.append(hook)


def finalized_hooks_run(invoices: Sequence[Invoice]) -> None:
    for hook in _finalized:
        hook(invoices)
