"""Reporting, from the results store alone: loading runs, the numbers table, rendering it (markdown / CSV /
LaTeX), plots, the MT-Bench tables and the comparison with committed reference results."""
