"""The experiment loop: supervisor, scheduler and slots, experiments, the judge, records, recovery,
proposers, promotion. `pgolf.loop.api.run_proposal` runs one proposal from outside the loop."""
