"""`tinyc fit`: search per-layer compression for the best model within a board's budgets
(search.py), over a space of per-layer methods (space.py), measuring candidates for real
(measure.py), in a resumable Optuna study (study.py)."""

from tinyc.fit.search import OBJECTIVES, FitOptions, FitResult, fit

__all__ = ["fit", "FitOptions", "FitResult", "OBJECTIVES"]
