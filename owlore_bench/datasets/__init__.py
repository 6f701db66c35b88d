"""The benchmark data, where it comes from and how its records read: the embedded BIG-bench tasks, the
commonsense files, and the prompt templates. Training (datasets/records.py, then train/tokenize.py) and evaluation both read these, so they
sit below both rooms."""
