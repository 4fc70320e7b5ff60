"""Operator and local tooling: the ``newsroom`` CLI, full builds and rebuilds,
``publish`` and the demo with its local S3 and edge emulation. Chalice does not
zip this package; nothing under ``chalicelib/`` imports it."""
