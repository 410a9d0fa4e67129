"""Optimizers (one update rule a file) and learning-rate schedules.

    from minigrad import optim
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)

Reading order: optimizer.py (the shared machinery), sgd.py, adagrad.py, rmsprop.py,
adadelta.py, adam.py, adamw.py, muon.py, lr_scheduler.py.
"""
from minigrad.optim import lr_scheduler
from minigrad.optim.adadelta import Adadelta
from minigrad.optim.adagrad import Adagrad
from minigrad.optim.adam import Adam
from minigrad.optim.adamw import AdamW
from minigrad.optim.muon import Muon
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.rmsprop import RMSprop
from minigrad.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Muon", "lr_scheduler"]
