"""Research: sources, store, grading, verification, competitors, injection into program.md."""
