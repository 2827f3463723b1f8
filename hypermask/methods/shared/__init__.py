"""What several methods share: the method base class and plain SGD (base.py), the hypernetwork
(hypernetwork.py), the target run with masked or generated parameters (functional.py), supermasks
(supermask.py) and the per-tensor thresholds (percentile.py).
"""
