"""Placeholder until the baseline training script lands (issue 4)."""
