"""Exact scoring: canonical byte tables, byte counting over shards, bits per byte."""
