"""Cells: one recurrent step and its local derivative, and the Trace a forward pass records.

The lowest layer of gradlab above :mod:`gradlab.io`: activations, initialisers,
the vanilla RNN, LSTM and GRU cells and their weights files.
"""
