"""Datasets: the challenge's shard format, the offline demo corpus, FineWeb download."""
