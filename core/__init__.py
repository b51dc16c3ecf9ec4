"""The kernel every app shares and that imports none of them (ARCHITECTURE.md, "Folders"): the
transactional outbox and its dispatcher, outbound webhooks (Standard Webhooks), field encryption."""
