"""Weight analysis: OWL outlier ratios (`outliers`) and HT-SR heavy-tail exponents (`heavy_tail`)."""
