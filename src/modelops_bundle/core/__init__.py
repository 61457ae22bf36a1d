"""Pure logic of modelops-bundle: no CLI, no terminal output.

The data flows one way: working tree -> tracking -> hashing -> index -> packaging -> transfer.
"""
