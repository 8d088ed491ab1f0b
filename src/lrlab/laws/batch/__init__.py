"""Batch-size laws: the best LR at each batch size of a grid, the surge / SGD noise-scale / power forms across
batch sizes, B_noise from steps vs examples, and hyperparameter power laws across model scale. numpy/scipy only.

    from lrlab.laws.batch import load_grids, fit_grid
    (grid,) = load_grids("grid.csv").values()
    g = fit_grid(grid)                     # law chosen by leave-one-batch-size-out error
    g.fit.params["b_noise"], g.fit.band([256, 512])
"""

from lrlab.laws.batch.forms import FORMS, BatchFit, Form, fit_form
from lrlab.laws.batch.grid import Grid, load_grids
from lrlab.laws.batch.optimum import Optimum, locate, locate_all
from lrlab.laws.batch.select import CANDIDATES, LAWS, GridFit, cv_error, fit_grid

__all__ = [
    "CANDIDATES",
    "FORMS",
    "LAWS",
    "BatchFit",
    "Form",
    "Grid",
    "GridFit",
    "Optimum",
    "cv_error",
    "fit_form",
    "fit_grid",
    "load_grids",
    "locate",
    "locate_all",
]
