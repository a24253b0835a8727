"""The paper's claims as pre-registered hypothesis tests (``pytest claims -n auto``)."""
