"""What payments tells the floor above without importing it: a new default payment method
(dunning charges it at once for an overdue invoice; dunning registers itself in its
AppConfig.ready)."""

from __future__ import annotations

from collections.abc import Callable

MethodChangedHook = Callable[[int], None]  # the organization's id, after the change is committed

_method_changed: list[MethodChangedHook] = []


def method_changed_hook_add(hook: MethodChangedHook) -> None:
    if hook not in _method_changed:
        _method_changed.append(hook)


def method_changed_hooks_run(organization_id: int) -> None:
    for hook in _method_changed:
        hook(organization_id)
