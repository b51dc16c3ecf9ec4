"""Document numbers, gap-free per tenant and prefix: one sequence row per prefix, locked in the
transaction that uses the numbers, so a rollback gives them back and there is never a gap
(invoices at finalization, credit notes when they are created)."""

from __future__ import annotations

from invoicing.models import NumberSequence


def numbers_take(prefix: str, count: int) -> list[str]:
    """`count` consecutive numbers for `prefix`, inside the caller's transaction."""
    if count == 0:
        return []
    sequence, _ = NumberSequence.objects.get_or_create(prefix=prefix)
    sequence = NumberSequence.objects.select_for_update().get(pk=sequence.pk)
    first = sequence.last_value + 1
    sequence.last_value += count
    sequence.save(update_fields=["last_value"])
    return [f"{prefix}{n:06d}" for n in range(first, first + count)]
