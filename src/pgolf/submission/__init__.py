"""Submissions: packaging a records folder, triage checks, the LUT audit, statistics."""
