"""Newsroom publisher: release JSON in, static newsroom out.

Data flows one way: source bytes -> ``model.parse_release`` -> ``render`` ->
``storage``. ``publisher`` orchestrates one key at a time; ``build`` renders a
whole folder; ``cli`` and ``app.py`` are thin adapters over both.
"""
