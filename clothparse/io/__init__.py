"""File input/output helpers: atomic writes and robust image reading."""
