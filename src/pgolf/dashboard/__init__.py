"""The local web dashboard and the static HTML report."""
