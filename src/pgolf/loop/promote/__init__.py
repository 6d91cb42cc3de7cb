"""Promotion: plan a remote run of a kept local experiment, check every gate, then reserve → run →
settle, write the remote row (tier, parent_run, cost), and recover what a killed pgolf left.

`plan` (the plan and its gates), `flight` (one promotion's state file, money and rows), `execute`
(the run and the queue), `recover` (after a kill). The decision to queue lives in `pgolf.loop.promotion`.
"""

from pgolf.loop.promote.execute import make_backend, promote_run, run_promotion_queue
from pgolf.loop.promote.flight import InFlight
from pgolf.loop.promote.plan import PromotionPlan, PromotionResult, plan_promotion, remote_data
from pgolf.loop.promote.recover import recover_promotions, sweep_at_start

__all__ = ["InFlight", "PromotionPlan", "PromotionResult", "make_backend", "plan_promotion", "promote_run",
           "recover_promotions", "remote_data", "run_promotion_queue", "sweep_at_start"]
