"""Results of every shipped experiment kind at toy sizes, shared by the figure and reproduce tests."""
from __future__ import annotations

import gradlab as gl
from gradlab.plots import FIGURES

# Sweep files of the shipped experiments' kinds at toy sizes; names match FigureSpec.results.
TINY_EXPERIMENTS = {
    "vanishing": """
kind = "run"
[grid]
radius = [0.5, 2.0]
activation = ["tanh", "relu"]
seed = [0, 1]
[fixed]
hidden = 4
steps = 8
batch = 2
""",
    "clipping": """
kind = "train"
[grid]
clipping = ["none", "norm"]
radius = [1.0, 2.0]
[fixed]
activation = "tanh"
task = "adding"
steps = 6
hidden = 4
batch = 4
updates = 6
lr = 0.05
threshold = 1.0
eval_every = 3
eval_batch = 8
jacobian_every = 3
""",
    "truncation": """
kind = "truncation"
[grid]
truncate = [0, 2, 6]
radius = [0.5, 1.5]
[fixed]
hidden = 4
steps = 8
batch = 2
""",
}
# The gated-cells comparison (figure "cells", gradlab.plots.dynamics) at toy sizes.
TINY_EXPERIMENTS["cells"] = """
kind = "run"
[grid]
cell = ["rnn", "lstm", "gru"]
radius = [1.0, 2.0]
[fixed]
hidden = 4
steps = 8
batch = 2
"""
TINY_RUN_SETS = {
    "heatmap": {f"r{r:g}": gl.RunConfig(hidden=4, steps=8, batch=2, activation="relu", radius=r, pairs="all")
                for r in (0.8, 2.0)},
    "transient": {init: gl.RunConfig(hidden=8, steps=10, batch=1, activation="linear", init=init, radius=0.9)
                  for init in ("gaussian", "orthogonal")},
}


# Figures whose results these fixtures make (the Lyapunov figure needs `gradlab lyapunov` output and is
# tested with it, in the tests of that command).
COVERED = [name for name, spec in FIGURES.items() if spec.results in {*TINY_EXPERIMENTS, *TINY_RUN_SETS}]
