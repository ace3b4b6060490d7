"""Prompt templates (Jinja2 ``*.j2``), installed as the package ``gliznet.templates``.

The folder stays at the top of the repository; ``pyproject.toml`` maps it to ``gliznet.templates`` so a
wheel carries the templates and ``gliznet.generation.prompts`` finds them with ``importlib.resources`` in an
editable install and a normal one alike.
"""
