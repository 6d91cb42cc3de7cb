"""The bad-input corpus: one table of hostile or broken inputs, each run through the real `pgolf`."""
