"""The benchmark data, where it comes from and how its records read: every source format (records.py), the
embedded commonsense files, your own BIG-bench, and the prompt templates. Training (records.py, then
train/tokenize.py) and evaluation both read these, so they sit below both rooms."""
