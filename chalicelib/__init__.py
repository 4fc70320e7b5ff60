"""Newsroom publisher: what the Lambda handlers run, and nothing else.

Data flows one way: source bytes -> ``core.model.parse_release`` ->
``core.render`` -> ``storage``. ``core`` is the pure part (no I/O);
``publisher`` orchestrates a batch of keys; ``app.py`` and the ``newsroom``
tool package (not shipped to Lambda) are thin adapters over it.
"""
