"""mops-mesa: modelops-bundle discovers Mesa agent-based models (``mesa.Model`` subclasses)."""
