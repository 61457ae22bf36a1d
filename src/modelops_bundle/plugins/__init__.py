"""Built-in plugins. Each is registered exactly like a third-party plugin (see core/plugins.py).

They are written with the public plugin API alone (``modelops_bundle.plugin``; tests/meta/test_public_api.py
checks it), imported where each name is used. ``hookimpl`` comes from ``modelops_bundle`` itself (the same
marker): every command loads these modules, and none of them needs the API module to start. The two
registry backend implementations (``registry_layout.py``, ``registry_distribution.py``) are the core's own OCI
machinery and the exception.
"""
