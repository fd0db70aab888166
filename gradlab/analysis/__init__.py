"""Analysis: pure functions of a Trace or of arrays.

Losses and BPTT gradients, gradient checks, Jacobian-product norms, spectra,
Lyapunov exponents and mean-field theory.
"""
