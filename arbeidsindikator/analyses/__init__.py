"""Analyses built on the indicator's results: pure computations (data in, result objects out,
no files written). Their reports live in `present`. Imports `pipeline` and `data`."""
