"""Files copied into every new workspace."""
