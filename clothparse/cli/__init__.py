"""The ``cpt`` command-line interface: ``app`` registers one command module per file."""
