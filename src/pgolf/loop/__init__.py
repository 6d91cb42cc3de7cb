"""The experiment loop: lifecycle, proposers, noise floor, promotion, supervisor."""
