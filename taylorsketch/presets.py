"""The reproduction's fixed choices: the paper's check value, the presets, the
figures, the grid of ``t``, the deletion set and the measured document.

Shared by :mod:`taylorsketch.reproduce` (which runs them) and
:mod:`taylorsketch.report` (which writes them up).
"""

# the paper's check value: plain training, 1000 steps, loss on "max" (method.md section 4)
PAPER_LOSS_MAX = 3.0913238794422027

PRESETS = {
    "full": {"n_docs": 1000, "steps": 1000,
             "fig1": {"order": 100, "directions": 12, "seed": 0, "doc_index": 0, "batch_size": 6},
             "fig2": {"order": 6, "fd_step": 1e-3},
             "fig3": {"order": 3, "directions": 500, "seed": 0, "batch_size": 125}},
    "quick": {"n_docs": 1000, "steps": 1000,
              "fig1": {"order": 32, "directions": 2, "seed": 0, "doc_index": 0, "batch_size": 1},
              "fig2": {"order": 6, "fd_step": 1e-3},
              "fig3": {"order": 3, "directions": 64, "seed": 0, "batch_size": 32}},
}
FIGURES = ("fig1", "fig2", "fig3")
T_GRID = [round(0.1 * i, 1) for i in range(11)]
DELETE_CONTAINS = "x"
MEASURE_DOC = "max"
