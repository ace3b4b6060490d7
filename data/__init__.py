"""Seed data of generation (``topics.tsv``, ``styles.json``), installed as the package ``gliznet.data``.

The folder stays at the top of the repository; ``pyproject.toml`` maps it to ``gliznet.data`` so a wheel
carries the files and ``gliznet.generation.loop`` finds them with ``importlib.resources`` in an editable
install and a normal one alike.
"""
