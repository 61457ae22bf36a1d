"""Built-in plugins. Each is registered exactly like a third-party plugin (see core/plugins.py)."""
