"""A cell added the way ARCHITECTURE.md says: one module implementing the Cell protocol, one registry line.

The cell is the minimalRNN (Chen, Pennington & Schoenholz 2018), written here
in the test so that the package does not ship it::

    z_t = tanh(W_xz x_t + b_z)                      input map
    u_t = σ(W_hu h_{t−1} + W_zu z_t + b_u)          one gate
    h_t = u_t ⊙ h_{t−1} + (1 − u_t) ⊙ z_t

    J_t = diag(u_t) + diag(e_t) W_hu,   e_t = (h_{t−1} − z_t) ⊙ u_t (1 − u_t)

Registered as ``minimal``, it runs through ``gradlab run``, ``gradlab check``
(BPTT against finite differences), the Jacobian-norm analysis and training
with no other change to the package; its derivatives are checked against
PyTorch autograd.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import expit

import gradlab as gl
from gradlab import cells
from gradlab.cells.base import StateTrace, check_inputs, initial_state, input_drive, input_weight_grad, sum_outer
from gradlab.cells.init import init_recurrent
from gradlab.cli import main


@dataclass(frozen=True)
class MinimalParams:
    W_xz: np.ndarray
    b_z: np.ndarray
    W_hu: np.ndarray
    W_zu: np.ndarray
    b_u: np.ndarray
    W_hy: np.ndarray
    b_y: np.ndarray

    n = property(lambda self: self.W_hu.shape[0])
    d = property(lambda self: self.W_xz.shape[1])
    m = property(lambda self: self.W_hy.shape[0])

    def as_dict(self):
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **arrays):
        return dataclasses.replace(self, **arrays)


@dataclass(frozen=True)
class MinimalTrace(StateTrace):
    x: np.ndarray
    h: np.ndarray
    z: np.ndarray       # (B, T, n)
    u: np.ndarray       # (B, T, n)
    e: np.ndarray       # (B, T, n) (h_{t−1} − z_t) u_t (1 − u_t)
    params: MinimalParams

    state_size = property(lambda self: self.n)

    def states(self):
        return self.h

    def right_multiply(self, P, t):
        return P * self.u[:, t - 1, None, :] + (P * self.e[:, t - 1, None, :]) @ self.params.W_hu

    def input_right_multiply(self, P, t):
        p = self.params
        dz = P * (1 - self.u[:, t - 1, None, :]) + (P * self.e[:, t - 1, None, :]) @ p.W_zu
        return (dz * (1 - self.z[:, t - 1, None, :] ** 2)) @ p.W_xz

    def param_grads(self, dS):
        p, lam = self.params, dS[:, 1:]
        dU = lam * self.e                                         # ∂L/∂(gate pre-activation)
        dZ = (lam * (1 - self.u) + dU @ p.W_zu) * (1 - self.z ** 2)   # ∂L/∂(input-map pre-activation)
        return {"W_xz": input_weight_grad(dZ, self.x, p.d), "b_z": dZ.sum(axis=(0, 1)),
                "W_hu": sum_outer(dU, self.h[:, :-1]), "W_zu": sum_outer(dU, self.z), "b_u": dU.sum(axis=(0, 1))}


class MinimalRNNCell:
    name = "minimal"
    param_names = ("W_xz", "b_z", "W_hu", "W_zu", "b_u")

    def init_params(self, n, d, m=None, init="gaussian", radius=1.0, rng=None, scale_by="radius", input_scale=1.0):
        rng = np.random.default_rng() if rng is None else rng
        m = d if m is None else m
        return MinimalParams(W_xz=rng.standard_normal((n, d)) * input_scale / np.sqrt(d), b_z=np.zeros(n),
                             W_hu=init_recurrent(n, init, radius, rng, scale_by),
                             W_zu=rng.standard_normal((n, n)) / np.sqrt(n), b_u=np.zeros(n),
                             W_hy=rng.standard_normal((m, n)) / np.sqrt(n), b_y=np.zeros(m))

    def from_state_dict(self, arrays, source, rng=None, m=None):
        return MinimalParams(**{k: arrays[k] for k in self.param_names + ("W_hy", "b_y")})

    def state_dict(self, params):
        return params.as_dict()

    def recurrent_blocks(self, params):
        return {"W_hu": params.W_hu}

    def forward(self, params, x, s0=None):
        x = check_inputs(x, params.d)
        Z = np.tanh(input_drive(params.W_xz, x) + params.b_z)
        B, T, n = Z.shape
        h, u, e = np.empty((B, T + 1, n)), np.empty((B, T, n)), np.empty((B, T, n))
        h[:, 0] = initial_state(s0, B, n)
        for t in range(1, T + 1):
            z, h_prev = Z[:, t - 1], h[:, t - 1]
            u[:, t - 1] = expit(h_prev @ params.W_hu.T + z @ params.W_zu.T + params.b_u)
            h[:, t] = u[:, t - 1] * h_prev + (1 - u[:, t - 1]) * z
            e[:, t - 1] = (h_prev - z) * u[:, t - 1] * (1 - u[:, t - 1])     # local derivative beside the value
        return MinimalTrace(x=x, h=h, z=Z, u=u, e=e, params=params)


@pytest.fixture
def minimal(monkeypatch):
    """The one registry line: ``CELLS["minimal"] = MinimalRNNCell``."""
    monkeypatch.setitem(cells.CELLS, "minimal", MinimalRNNCell)


def test_the_new_cell_runs_through_gradlab_run_and_writes_every_table(minimal, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--cell", "minimal", "--hidden", "6", "--steps", "12", "--radius", "1.5",
              "--pairs", "all", "--out", str(tmp_path / "run")])
    assert e.value.code == 0, capsys.readouterr().err
    norms = gl.schema.read_table(tmp_path / "run" / "norms.csv", "norms")
    assert len(norms) == 4 * 12 * 13 // 2                          # every pair of every sequence
    assert np.all(norms.log10_norm <= norms.log10_bound + 1e-12)   # the trajectory's own bound holds


def test_the_new_cell_passes_gradlab_check(minimal, capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--cell", "minimal", "--hidden", "3", "--inputs", "2", "--steps", "6", "--batch", "2",
              "--truncate", "2"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "PASS" in out, out
    for name in MinimalRNNCell.param_names + ("W_hy", "b_y"):
        assert name in out


def test_the_new_cells_jacobian_norms_equal_dense_products(minimal):
    model = gl.build_model(gl.RunConfig(cell="minimal", hidden=5, steps=9, batch=2, radius=2.0))
    trace = model.cell.forward(model.params, model.x)
    jn = gl.jacobian_norms(trace, "all", method="subspace")
    for i, (t, k) in enumerate(zip(jn.t, jn.k)):
        dense = np.eye(5)[None]
        for j in range(t, k, -1):
            dense = dense @ trace.jacobian(j)
        np.testing.assert_allclose(jn.log_norm[:, i], np.log(np.linalg.norm(dense, 2, axis=(1, 2))), rtol=1e-11)


def test_the_new_cell_trains(minimal):
    r = gl.train(gl.TrainConfig(task="adding", cell="minimal", steps=8, hidden=6, updates=20, eval_every=10,
                                eval_batch=16, optimizer="adam", lr=0.01))
    assert r.tables["training"]["skipped"].sum() == 0 and np.isfinite(r.summary["final_loss"])


def test_the_new_cells_derivatives_against_torch_autograd(minimal, torch):
    rng = np.random.default_rng(3)
    cell = MinimalRNNCell()
    p = cell.init_params(4, 3, m=2, radius=1.3, rng=rng)
    p = p.replace(b_z=0.3 * rng.standard_normal(4), b_u=0.3 * rng.standard_normal(4))
    x, y = rng.standard_normal((2, 7, 3)), rng.standard_normal((2, 7, 2))
    g = gl.gradients(cell, p, x, y, "mse", "all")

    T = {k: torch.tensor(v, requires_grad=True) for k, v in p.as_dict().items()}
    X = torch.tensor(x)
    h, loss, states = torch.zeros(2, 4, dtype=torch.float64), 0.0, []
    for t in range(7):
        z = torch.tanh(X[:, t] @ T["W_xz"].T + T["b_z"])
        u = torch.sigmoid(h @ T["W_hu"].T + z @ T["W_zu"].T + T["b_u"])
        h = u * h + (1 - u) * z
        states.append(h)
        loss = loss + (((h @ T["W_hy"].T + T["b_y"]) - torch.tensor(y[:, t])) ** 2).sum() / 2 / 2
    loss.backward()
    assert g.loss == pytest.approx(loss.item(), rel=1e-13)
    for name, value in T.items():
        np.testing.assert_allclose(g.grads[name], value.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)
    # the step and input Jacobians of one step, against autograd of that step
    tr = cell.forward(p, x)
    h_prev, x_t = torch.tensor(tr.h[:, 3]), torch.tensor(x[:, 3])

    def step(h_prev, x_t):
        z = torch.tanh(x_t @ T["W_xz"].T.detach() + T["b_z"].detach())
        u = torch.sigmoid(h_prev @ T["W_hu"].T.detach() + z @ T["W_zu"].T.detach() + T["b_u"].detach())
        return u * h_prev + (1 - u) * z

    J, K = torch.autograd.functional.jacobian(step, (h_prev, x_t))
    for b in range(2):
        np.testing.assert_allclose(tr.jacobian(4)[b], J[b, :, b].numpy(), rtol=1e-12, atol=1e-14)
        eye = np.broadcast_to(np.eye(4), (2, 4, 4))
        np.testing.assert_allclose(tr.input_right_multiply(eye, 4)[b], K[b, :, b].numpy(), rtol=1e-12, atol=1e-14)
