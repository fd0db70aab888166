"""Fixed and slow points with known answers: a linear RNN, hand-made 2-unit attractors, a ghost
(slow point) past a saddle-node bifurcation, gated cells' origin, and a trained 3-bit flip-flop."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from gradlab import GradlabError
from gradlab.analysis.fixed_points import (compute_pca, find_fixed_points, fixed_point_analysis, sample_starts,
                                           trajectory_table)
from gradlab.cells import make_cell
from gradlab.cells.rnn import RNNParams

POINT_COLUMNS = ["point_id", "kind", "q", "speed", "n_starts", "n_unstable", "stability", "max_abs_eigenvalue",
                 "pc1", "pc2", "pc3"]


def rnn_params(W, b=None, W_xh=None):
    n = W.shape[0]
    return RNNParams(W_xh=np.zeros((n, 1)) if W_xh is None else W_xh, W_hh=W,
                     b_h=np.zeros(n) if b is None else b, W_hy=np.zeros((1, n)), b_y=np.zeros(1))


def test_linear_rnn_has_one_fixed_point_with_the_eigenvalues_of_W():
    """h ↦ W h + W_xh x + b: the point is (I − W)⁻¹(W_xh x + b), J = W; three of W's eigenvalues lie
    outside the unit circle, so the point is a saddle with 3 unstable modes. Abs tolerance 1e-10 on the
    point (Newton-polished: rounding of a 5 × 5 solve), 1e-12 on the eigenvalues (J is W exactly)."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 5)) / np.sqrt(5)
    W = W * (1.05 / np.sort(np.abs(np.linalg.eigvals(W)))[-3])      # the 3rd largest |λ| is 1.05
    eig_W = np.linalg.eigvals(W)
    W_xh, b, x = rng.standard_normal((5, 2)), rng.standard_normal(5), np.array([0.3, -1.2])
    fp = find_fixed_points(make_cell("rnn", "linear"), rnn_params(W, b, W_xh), x, rng.standard_normal((20, 5)))
    expected = np.linalg.solve(np.eye(5) - W, W_xh @ x + b)
    assert fp.counts == {"fixed": 20, "slow": 0, "not_converged": 0, "non_finite": 0}
    assert len(fp.fixed_points) == 1
    assert list(fp.fixed_points.columns) == POINT_COLUMNS + [f"s{i}" for i in range(5)]
    row = fp.fixed_points.iloc[0]
    assert row.kind == "fixed" and row.n_starts == 20 and row.stability == "saddle"
    assert row.n_unstable == np.sum(np.abs(eig_W) > 1) == 3
    assert fp.points[0] == pytest.approx(expected, abs=1e-10)
    assert row[[f"s{i}" for i in range(5)]].to_numpy(float) == pytest.approx(expected, abs=1e-10)
    eig = fp.eigenvalues
    assert list(eig.columns) == ["point_id", "index", "real", "imag", "abs"] and eig["index"].tolist() == [1, 2, 3, 4, 5]
    assert np.all(np.diff(eig["abs"]) <= 0)
    got = np.sort_complex(eig.real.to_numpy() + 1j * eig.imag.to_numpy())
    assert got == pytest.approx(np.sort_complex(eig_W), abs=1e-12)
    assert row.max_abs_eigenvalue == pytest.approx(np.abs(eig_W).max(), abs=1e-12)
    assert (fp.starts.point_id == 0).all() and fp.starts.q.max() < 1e-24
    assert fp.final == pytest.approx(np.broadcast_to(expected, (20, 5)), abs=1e-10)


def tanh_root(w):
    """The positive root of tanh(w h) = h (w > 1), by Brent's method: independent of the optimiser."""
    return brentq(lambda h: np.tanh(w * h) - h, 0.1, 1.0, xtol=1e-15)


def test_two_self_exciting_units_have_four_attractors_four_saddles_and_a_repeller():
    """h ↦ tanh(diag(2, 3) h): per unit 2 stable points ±h*_w and an unstable 0 (slope w > 1), so the
    9 products: 4 stable, 4 saddles (1 unstable mode), 1 repeller (2). J = diag(w_i (1 − h_i²))."""
    w = np.array([2.0, 3.0])
    grid = np.linspace(-1.3, 1.3, 10) + 0.0137                      # no start exactly at a fixed point
    starts = np.array([[a, b] for a in grid for b in grid])
    fp = find_fixed_points(make_cell("rnn", "tanh"), rnn_params(np.diag(w)), np.zeros(1), starts)
    assert fp.counts["fixed"] == 100 and len(fp.fixed_points) == 9
    levels = [np.array([-tanh_root(wi), 0.0, tanh_root(wi)]) for wi in w]
    expected = np.array([[a, b] for a in levels[0] for b in levels[1]])
    order = np.lexsort(fp.points.T[::-1])
    assert fp.points[order] == pytest.approx(expected, abs=1e-12)
    table = fp.fixed_points.iloc[order]
    assert table.stability.value_counts().to_dict() == {"stable": 4, "saddle": 4, "unstable": 1}
    assert table.n_unstable.tolist() == [np.sum(np.abs(p) < 0.5) for p in expected]     # units sitting at 0
    J_diag = w * (1 - expected ** 2)
    for pid, diag in zip(table.point_id, J_diag):
        got = fp.eigenvalues[fp.eigenvalues.point_id == pid]
        assert np.sort(got.real.to_numpy()) == pytest.approx(np.sort(diag), abs=1e-12)
        assert np.all(got.imag == 0)
    assert fp.fixed_points.n_starts.sum() == 100


def test_coupled_units_keep_nine_points_each_a_true_fixed_point():
    """A weak coupling moves the points but not their number or types (structural stability)."""
    W = np.array([[2.0, 0.15], [-0.1, 3.0]])
    grid = np.linspace(-1.3, 1.3, 10) + 0.0137
    starts = np.array([[a, b] for a in grid for b in grid])
    fp = find_fixed_points(make_cell("rnn", "tanh"), rnn_params(W), np.zeros(1), starts)
    assert len(fp.fixed_points) == 9
    assert fp.fixed_points.stability.value_counts().to_dict() == {"stable": 4, "saddle": 4, "unstable": 1}
    assert np.tanh(fp.points @ W.T) == pytest.approx(fp.points, abs=1e-14)
    for pid, p in enumerate(fp.points):             # eigenvalues of diag(1 − tanh²) W, computed here
        eig = np.linalg.eigvals((1 - np.tanh(W @ p) ** 2)[:, None] * W)
        got = fp.eigenvalues[fp.eigenvalues.point_id == pid]
        assert np.sort(got["abs"].to_numpy()) == pytest.approx(np.sort(np.abs(eig)), abs=1e-12)


def test_a_ghost_past_a_saddle_node_is_reported_as_a_slow_point():
    """h ↦ tanh(2h + b) with b 0.001 past the saddle-node at b_c = atanh(1/√2) − √2 (tangency at
    h = 1/√2): one stable fixed point near −0.99, and where the other two were a local minimum of q
    with q ≈ ½(0.001 · ½)² > 0. Its location and q are checked against scipy's bounded scalar minimiser
    (xatol 1e-12) to 1e-6 and 1e-3 relative (q is flat there: q'' ≈ 1e-3)."""
    b = np.arctanh(1 / np.sqrt(2)) - np.sqrt(2) - 0.001
    F = lambda h: np.tanh(2 * h + b)  # noqa: E731
    ghost = minimize_scalar(lambda h: 0.5 * (F(h) - h) ** 2, bounds=(0.5, 0.9), method="bounded",
                            options={"xatol": 1e-12})
    assert 1e-8 < ghost.fun < 1e-6
    stable = brentq(lambda h: F(h) - h, -1.0, 0.0, xtol=1e-15)
    starts = np.linspace(-1.2, 1.2, 25)[:, None] + 0.001
    fp = find_fixed_points(make_cell("rnn", "tanh"), rnn_params(np.array([[2.0]]), np.array([b])), np.zeros(1),
                           starts)
    table = fp.fixed_points
    assert table.kind.tolist() == ["fixed", "slow"] and fp.counts["not_converged"] == 0
    assert fp.points[0, 0] == pytest.approx(stable, abs=1e-12) and table.stability[0] == "stable"
    assert fp.points[1, 0] == pytest.approx(ghost.x, abs=1e-6)
    assert table.q[1] == pytest.approx(ghost.fun, rel=1e-3)
    assert table.speed[1] == pytest.approx(np.sqrt(2 * table.q[1]))
    assert table.pc2.isna().all() and table.pc3.isna().all()     # a 1-d state has one principal axis


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cells_with_zero_biases_have_the_origin_as_a_fixed_point(cell):
    """Zero biases and input: s = 0 is fixed (LSTM: g = tanh 0 = 0 so C = 0, h = o tanh 0 = 0; GRU:
    ñ = tanh 0 = 0, h = z · 0). Small recurrent weights (ρ = 0.3 per block) make it the only one."""
    rng = np.random.default_rng(1)
    c = make_cell(cell)
    p = c.init_params(3, 2, radius=0.3, rng=rng)
    s = c.forward(p, np.zeros((1, 1, 2))).state_size
    fp = find_fixed_points(c, p, np.zeros(2), 0.5 * rng.standard_normal((16, s)))
    assert len(fp.fixed_points) == 1 and fp.counts["fixed"] == 16
    assert fp.points[0] == pytest.approx(np.zeros(s), abs=1e-12)
    J = c.forward(p, np.zeros((1, 1, 2)), np.zeros((1, s))).jacobian(1)[0]
    assert np.sort(fp.eigenvalues["abs"].to_numpy()) == pytest.approx(np.sort(np.abs(np.linalg.eigvals(J))),
                                                                       abs=1e-12)
    assert fp.fixed_points.stability[0] == "stable"


def test_a_constant_token_input_is_accepted():
    """Token id k drives the linear RNN with the column W_xh[:, k]: the point is (I − W)⁻¹(W_xh[:, k] + b)."""
    rng = np.random.default_rng(2)
    W, W_xh, b = 0.5 * np.eye(3), rng.standard_normal((3, 4)), rng.standard_normal(3)
    fp = find_fixed_points(make_cell("rnn", "linear"), rnn_params(W, b, W_xh), np.int64(2),
                           rng.standard_normal((4, 3)))
    assert fp.points[0] == pytest.approx(np.linalg.solve(np.eye(3) - W, W_xh[:, 2] + b), abs=1e-12)


@dataclass(frozen=True)
class StubTrace:
    """One step s ↦ 0.5 s, except nan where s_0 > 10: a cell that overflows for some states."""

    S: np.ndarray

    @property
    def state_size(self):
        return self.S.shape[1]

    def states(self):
        F = 0.5 * self.S
        F[self.S[:, 0] > 10] = np.nan
        return np.stack([self.S, F], axis=1)

    def vjp(self, v, t):
        return 0.5 * v

    def jacobian(self, t):
        return np.broadcast_to(0.5 * np.eye(self.state_size), (len(self.S), self.state_size, self.state_size))


class StubCell:
    def forward(self, params, x, s0=None):
        return StubTrace(np.zeros((len(x), 2)) if s0 is None else np.array(s0, dtype=float))


def test_every_start_is_reported_and_counted_none_dropped():
    starts = np.array([[1.0, 2.0], [20.0, 0.0], [-3.0, 4.0], [11.0, 1.0]])
    fp = find_fixed_points(StubCell(), SimpleNamespace(d=1), np.zeros(1), starts)
    assert fp.counts == {"fixed": 2, "slow": 0, "not_converged": 0, "non_finite": 2}
    assert fp.starts.status.tolist() == ["fixed", "non_finite", "fixed", "non_finite"]
    assert fp.starts.point_id.tolist() == [0, -1, 0, -1] and len(fp.fixed_points) == 1
    # one L-BFGS iteration and no Newton polish: the starts are counted as not converged
    rng = np.random.default_rng(3)
    W = np.diag([2.0, 3.0])
    slow = find_fixed_points(make_cell("rnn", "tanh"), rnn_params(W), np.zeros(1), rng.uniform(-1, 1, (30, 2)),
                             max_iter=1, newton_steps=0)
    assert sum(slow.counts.values()) == 30 == len(slow.starts)
    assert slow.counts["not_converged"] > 0
    assert (slow.starts.point_id[slow.starts.status == "not_converged"] == -1).all()
    assert slow.fixed_points.n_starts.sum() == 30 - slow.counts["not_converged"]


def test_three_bit_flip_flop_network_has_eight_stable_fixed_points_one_per_memory():
    """Sussillo & Barak 2013: a 16-unit tanh RNN trained on the 3-bit flip-flop (500 SGD
    updates, ~1 s) has, under zero input, 8 stable fixed points, and reading each out gives a different
    one of the 2³ sign patterns (plus unstable saddles between them)."""
    import gradlab as gl

    r = gl.train(gl.TrainConfig(task="flip_flop", steps=40, hidden=16, updates=500, lr=0.01, momentum=0.9,
                                clipping="norm", threshold=1.0, batch=32, eval_every=500, eval_batch=128, seed=0))
    assert r.summary["final_metric"] < 0.01                          # chance is 1
    rng = np.random.default_rng(1)
    batch = gl.get_task("flip_flop").batch(64, 100, rng)
    fp, trajectories = fixed_point_analysis(make_cell("rnn", "tanh"), r.params, batch.x, np.zeros(3), 256, rng,
                                            noise=0.05)
    assert fp.counts["non_finite"] == 0
    stable = fp.fixed_points[fp.fixed_points.stability == "stable"]
    assert len(stable) == 8
    h = stable[[f"s{i}" for i in range(16)]].to_numpy()
    signs = np.sign(h @ r.params.W_hy.T + r.params.b_y)
    assert len({tuple(row) for row in signs}) == 8                   # every memory state, once
    assert (fp.fixed_points.stability == "saddle").sum() >= 1
    assert list(trajectories.columns) == ["sequence", "t", "pc1", "pc2", "pc3"] and len(trajectories) == 64 * 101


def test_starts_pca_and_trajectories():
    rng = np.random.default_rng(4)
    states = rng.standard_normal((3, 11, 4)) * np.array([3.0, 2.0, 1.0, 0.1])
    starts = sample_starts(states, 5, np.random.default_rng(0))
    rows = states.reshape(-1, 4)
    assert all(any(np.array_equal(s, r) for r in rows) for s in starts)
    assert np.array_equal(starts, sample_starts(states, 5, np.random.default_rng(0)))
    noisy = sample_starts(states, 5, np.random.default_rng(0), noise=0.1)
    assert 0 < np.abs(noisy - starts).max() < 1.0
    assert len(sample_starts(states, 100, rng)) == 100                   # more than recorded: with replacement
    pca = compute_pca(states)
    assert pca.components @ pca.components.T == pytest.approx(np.eye(3), abs=1e-12)
    assert np.all(np.diff(pca.explained) <= 0) and pca.explained.sum() <= 1
    assert np.all(np.abs(pca.components).argmax(axis=1) == [0, 1, 2])    # the scaled axes, in order
    assert np.all(pca.components[np.arange(3), np.abs(pca.components).argmax(axis=1)] > 0)
    traj = trajectory_table(states, pca)
    assert traj.pc1.to_numpy() == pytest.approx((rows - rows.mean(0)) @ pca.components[0], abs=1e-12)


@pytest.mark.parametrize("call,message", [
    (lambda f, c, p: f(c, p, np.zeros(2), np.zeros((3, 2))), r"constant input x must have shape \(1,\), got \(2,\)"),
    (lambda f, c, p: f(c, p, np.array([np.nan]), np.zeros((3, 2))), "constant input x contains non-finite"),
    (lambda f, c, p: f(c, p, np.int64(5), np.zeros((3, 2))), r"constant token input must lie in \[0, 1\), got 5"),
    (lambda f, c, p: f(c, p, np.zeros(1), np.zeros((3, 3))), r"starts must have shape \(B, 2\), got \(3, 3\)"),
    (lambda f, c, p: f(c, p, np.zeros(1), np.zeros(2)), r"starts must have shape \(B, 2\), got \(2,\)"),
    (lambda f, c, p: f(c, p, np.zeros(1), np.full((3, 2), np.inf)), "starts contain non-finite values"),
    (lambda f, c, p: f(c, p, np.zeros(1), np.zeros((3, 2)), np.zeros((4, 5))), r"states must have shape \(N, 2\)"),
    (lambda f, c, p: f(c, p, np.zeros(1), np.zeros((3, 2)), fixed_tol=0), "fixed_tol must be a positive number, got 0"),
    (lambda f, c, p: f(c, p, np.zeros(1), np.zeros((3, 2)), slow_tol=1e-20), "slow_tol must be at least fixed_tol"),
    (lambda f, c, p: f(c, p, np.zeros(1), np.zeros((3, 2)), max_iter=0),
     "max_iter must be a whole number ≥ 1, got 0"),
])
def test_bad_input_is_a_one_line_error_naming_the_value(call, message):
    c, p = make_cell("rnn", "tanh"), rnn_params(np.eye(2))
    with pytest.raises(GradlabError, match=message) as e:
        call(find_fixed_points, c, p)
    assert "\n" not in str(e.value)


def test_bad_sampling_arguments_are_refused():
    with pytest.raises(GradlabError, match="n_starts must be a whole number ≥ 1, got 0"):
        sample_starts(np.zeros((4, 2)), 0, np.random.default_rng(0))
    with pytest.raises(GradlabError, match="noise must be a non-negative number, got -1"):
        sample_starts(np.zeros((4, 2)), 2, np.random.default_rng(0), noise=-1.0)
