"""The per-organization training node, its job files and the end-to-end demo."""
