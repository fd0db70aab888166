"""The tables some cells add to a run: the registry :data:`EXTRA_TABLES`.

A cell lists the names it supports in ``extra_tables``; :func:`gradlab.analyse`
adds each table, made from the run's trace by the function registered here.
"""
from __future__ import annotations

from .cell_state import cell_state_table
from .layer_norms import layer_block_norms

# name a cell lists in ``extra_tables`` → (trace, pairs) -> DataFrame
EXTRA_TABLES = {
    "cell_state": cell_state_table,     # LSTM: the cell-state chain, four-term, forget-only and exact
    "layers": layer_block_norms,        # stacked layers: ‖∂h^l_t/∂h^l_k‖ per layer
}
