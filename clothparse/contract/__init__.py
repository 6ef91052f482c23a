"""What an exported model and every engine agree on: the preprocessing contract
(``canvas``) and the metadata that travels with an exported file (``sidecar``).

Depends on neither ``clothparse.engines`` nor ``clothparse.export``; both use it.
"""
