"""Analysis over many networks and devices: the ridge-point sweep of the MobileNetV4 paper
(``sweep``) and the plots (``plot``: roofline chart, sweep lines, per-layer breakdown, Pareto fronts).
matplotlib is imported only by ``plot``.
"""
