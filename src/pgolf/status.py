"""The ledger's run statuses and the named groups every reader uses (defined here once).

A status is what one run of results.tsv ended as. Code asks a named question ("has it a score?",
"did it fail?") through the sets below instead of spelling out its own list of names.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """How one run ended; the value is what results.tsv holds."""

    BASELINE = "baseline"  # the unchanged best commit, one seed: a noise-floor or incumbent point
    KEEP = "keep"  # a candidate adopted as the new best (remote tiers: a run that scored within the limit)
    DISCARD = "discard"  # measured, not better
    REPLICATE = "replicate"  # measured, promising: more seeds run before it is judged
    CRASH = "crash"
    OVERSIZE = "oversize"
    TIMEOUT = "timeout"
    ABORTED = "aborted"  # stopped by the user, or the script's own early abort
    SKIPPED = "skipped"  # the proposer changed nothing
    REJECTED = "rejected"  # the proposal was invalid (e.g. a diff that does not apply)


ALL = frozenset(Status)
# The row's val_bpb is a complete measurement that may be compared with others.
HAS_SCORE = frozenset({Status.BASELINE, Status.KEEP, Status.DISCARD, Status.REPLICATE})
# A complete measurement, though the run was refused (the artifact is over the limit).
MEASURED = HAS_SCORE | {Status.OVERSIZE}
# A run that may stand for the best of its tier.
BEST_CANDIDATE = frozenset({Status.BASELINE, Status.KEEP})
# The run itself failed a hard gate.
FAILED = frozenset({Status.CRASH, Status.TIMEOUT, Status.OVERSIZE})
# Measured or failed without a gain: what the agent's brief lists as dead ends and failures.
UNSUCCESSFUL = FAILED | {Status.DISCARD}
# Nothing was trained.
NOT_RUN = frozenset({Status.SKIPPED, Status.REJECTED})
# The reason of the run belongs in its ledger description (why a measured run was or was not kept is
# in decision.json).
EXPLAINED_IN_ROW = ALL - HAS_SCORE - {Status.SKIPPED}
# Told to a search study as a value (a skipped proposal re-measures the best).
TELLS_A_VALUE = HAS_SCORE | {Status.SKIPPED}
