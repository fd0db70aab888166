"""Gradient checks: finite differences, the relative error, truncation errors."""
import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.gradcheck import relative_error
from conftest import draw_targets, make_model


def two_step_linear_problem():
    rng = np.random.default_rng(0)
    n, d, m = 3, 2, 2
    p = gl.RNNParams(W_xh=rng.standard_normal((n, d)), W_hh=rng.standard_normal((n, n)) / 2,
                     b_h=rng.standard_normal(n), W_hy=rng.standard_normal((m, n)), b_y=rng.standard_normal(m))
    return p, rng.standard_normal((1, 2, d)), rng.standard_normal((1, m))


def test_gradients_of_a_two_step_linear_net_in_closed_form():
    """h_1 = W_xh x_1 + b, h_2 = W_hh h_1 + W_xh x_2 + b, L = ‖W_hy h_2 + b_y − y‖² / m.

    Every gradient written out by hand; both BPTT and the finite differences
    must reproduce it.
    """
    p, x, y = two_step_linear_problem()
    x1, x2, yv, m = x[0, 0], x[0, 1], y[0], p.m
    h1 = p.W_xh @ x1 + p.b_h
    h2 = p.W_hh @ h1 + p.W_xh @ x2 + p.b_h
    o = p.W_hy @ h2 + p.b_y
    g = 2 * (o - yv) / m                # ∂L/∂o
    d2 = p.W_hy.T @ g                   # ∂L/∂h_2 (= ∂L/∂a_2, linear)
    d1 = p.W_hh.T @ d2                  # ∂L/∂h_1
    expected = {"W_xh": np.outer(d2, x2) + np.outer(d1, x1), "W_hh": np.outer(d2, h1), "b_h": d1 + d2,
                "W_hy": np.outer(g, h2), "b_y": g}
    ours = gl.loss_and_grads(p, x, y, "linear", "mse", "last")
    fd = gl.finite_difference_grads(p, x, y, "linear", "mse", "last")
    assert ours.loss == pytest.approx(np.sum((o - yv) ** 2) / m, rel=1e-14)
    np.testing.assert_allclose(ours.dL_dh[0, 2], d2, rtol=1e-13)
    np.testing.assert_allclose(ours.dL_dh[0, 1], d1, rtol=1e-13)
    for name, value in expected.items():
        np.testing.assert_allclose(ours.grads[name], value, rtol=1e-13, atol=1e-15, err_msg=name)
        # A quadratic loss: central differences are exact up to rounding (~1e-16 / ε).
        np.testing.assert_allclose(fd[name], value, rtol=0, atol=1e-9 * np.abs(value).max(), err_msg=name)


def test_relative_error_is_judged_on_the_gradients_scale():
    g = np.array([1e-3, -2.0, 0.0, 4.0])
    assert relative_error(g, g) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    off = g.copy()
    off[0] += 4e-6                                     # off by 1e-6 of the largest entry
    assert relative_error(off, g) == pytest.approx(1e-6, rel=1e-9)
    assert relative_error(off, g) == relative_error(g, off)
    assert relative_error(1e-200 * off, 1e-200 * g) == pytest.approx(1e-6, rel=1e-9)   # scale-free
    assert relative_error(np.zeros(2), np.array([0.0, 3.0])) == 1.0


def test_relative_error_of_non_finite_gradients_is_nan_not_zero():
    """An overflowing network's gradients are NaN; calling them 0 away from each other passed `gradlab check`."""
    nan = np.full(3, np.nan)
    assert np.isnan(relative_error(nan, nan))
    assert np.isnan(relative_error(np.array([1.0, np.inf]), np.array([1.0, np.inf])))
    assert np.isnan(relative_error(np.ones(2), np.array([1.0, np.nan])))


def test_gradient_check_table():
    p, x = make_model("tanh", n=3, d=2, m=2, B=2, T=5)
    y = draw_targets(np.random.default_rng(0), "mse", "all", 2, 5, 2)
    table = gl.gradient_check(p, x, y, "tanh", "mse", "all")
    assert list(table.columns) == ["parameter", "entries", "kinks", "bptt_vs_fd"]
    assert list(table.parameter) == list(gl.PARAM_NAMES)
    assert (table.kinks == 0).all()                           # tanh is smooth: nothing is left out
    assert list(table.entries) == [getattr(p, name).size for name in gl.PARAM_NAMES]
    assert table.bptt_vs_fd.max() < 1e-7

    table = gl.gradient_check(p, x, y, "tanh", "mse", "all", truncate=1).set_index("parameter")
    assert {"truncated_vs_full", "truncated_vs_fd"} <= set(table.columns)
    assert (table.loc[["W_hy", "b_y"], "truncated_vs_full"] == 0).all()   # the read-out is not truncated
    assert (table.loc[["W_xh", "W_hh", "b_h"], "truncated_vs_full"] > 1e-4).all()
    # The check of a truncated gradient reports its distance from the truth (up to the FD error).
    np.testing.assert_allclose(table.truncated_vs_fd, table.truncated_vs_full, atol=1e-7)


def test_truncation_errors_vanish_at_K_equal_T_minus_1():
    T = 8
    p, x = make_model("tanh", n=4, d=2, m=2, B=2, T=T, radius=1.2)
    y = draw_targets(np.random.default_rng(1), "mse", "all", 2, T, 2)
    table = gl.truncation_errors(p, x, y, range(0, T + 2), "tanh", "mse", "all")
    assert list(table.columns) == ["truncate", "parameter", "rel_error"]
    assert set(table.parameter) == set(gl.PARAM_NAMES) | {"all"}
    assert len(table) == (T + 2) * (len(gl.PARAM_NAMES) + 1)
    late = table[table["truncate"] >= T - 1]
    assert late.rel_error.max() <= 1e-15
    early = table[(table["truncate"] < T - 2) & table.parameter.isin(["W_xh", "W_hh", "b_h", "all"])]
    assert early.rel_error.min() > 1e-8

    full = gl.loss_and_grads(p, x, y).grads
    trunc = gl.loss_and_grads(p, x, y, truncate=2).grads
    row = table[(table["truncate"] == 2) & (table.parameter == "W_hh")].rel_error.item()
    assert row == pytest.approx(np.linalg.norm(trunc["W_hh"] - full["W_hh"]) / np.linalg.norm(full["W_hh"]), rel=1e-12)
    # "all" stacks every parameter: a weighted mean of the per-parameter errors, within their range.
    for K, group in table.groupby("truncate"):
        per = group[group.parameter != "all"].rel_error
        overall = group[group.parameter == "all"].rel_error.item()
        assert per.min() - 1e-15 <= overall <= per.max() + 1e-15, K


def relu_problem():
    """The defaults of `gradlab check --activation relu` (n 32, d 4, T 100, B 4), where ±ε crosses 0 somewhere."""
    model = gl.build_model(gl.RunConfig(activation="relu"))
    return model.params, model.x, model.y


def test_relu_entries_whose_perturbation_crosses_the_kink_are_left_out_and_the_rest_pass():
    """Issue 12.1: central differences across ReLU's kink measure the jump, not the derivative (2e-4 for
    W_hh at the CLI's defaults); those entries are found, counted and left out, and the rest agree with BPTT."""
    p, x, y = relu_problem()
    fd, kinks = gl.finite_difference_grads(p, x, y, "relu", "mse", "all", with_kinks=True)
    bptt = gl.loss_and_grads(p, x, y, "relu", "mse", "all").grads
    crossed = kinks["W_hh"]
    assert 0 < crossed.sum() < crossed.size // 10
    # Where a unit switched, the difference quotient is not the derivative; elsewhere it is.
    assert relative_error(bptt["W_hh"], fd["W_hh"]) > 1e-6
    assert relative_error(bptt["W_hh"][~crossed], fd["W_hh"][~crossed]) < 1e-8
    # An entry is marked only if its ±ε pass really moved some pre-activation across 0.
    name, i = "W_hh", tuple(np.argwhere(crossed)[0])
    base = gl.forward(p, x, "relu").a > 0
    moved = []
    for sign in (1, -1):
        W = p.W_hh.copy()
        W[i] += sign * 1e-5
        moved.append(np.any((gl.forward(p.replace(W_hh=W), x, "relu").a > 0) != base))
    assert any(moved)
    table = gl.gradient_check(p, x, y, "relu", "mse", "all").set_index("parameter")
    assert table.loc["W_hh", "kinks"] == crossed.sum()
    assert table.bptt_vs_fd.max() < 1e-6


def test_a_wrong_relu_gradient_still_fails_the_check(monkeypatch):
    """Leaving kinked entries out must not hide a real error: a BPTT off by 1e-4 of its scale fails."""
    import gradlab.analysis.gradcheck as gc

    p, x, y = relu_problem()
    real = gc.gradients

    def off_by_a_little(*args, **kwargs):
        g = real(*args, **kwargs)
        g.grads["W_hh"] = g.grads["W_hh"] * (1 + 1e-4)
        return g

    monkeypatch.setattr(gc, "gradients", off_by_a_little)
    table = gl.gradient_check(p, x, y, "relu", "mse", "all").set_index("parameter")
    assert table.loc["W_hh", "bptt_vs_fd"] > 1e-6
    assert table.drop(index="W_hh").bptt_vs_fd.max() < 1e-6
