"""LSTM and GRU cells: forward pass and exact Jacobians against PyTorch and finite differences.

The independent implementation is PyTorch's own ``nn.LSTM`` / ``nn.GRU`` in
float64, with its weights dumped to ``.npz`` and loaded by gradlab exactly as
a user would. Jacobians are compared with ``torch.autograd.functional.jacobian``
of one real ``nn.LSTM`` step, products with the autograd Jacobian of the
unrolled network, and the cell-state derivatives with central differences.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradlab as gl
from gradlab.cells.gated import GATES
from gradlab.cells.lstm import lstm_cell

N, D, T, B = 5, 3, 7, 2


def torch_module(torch, cell: str, seed: int):
    torch.manual_seed(seed)
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    return cls(D, N, batch_first=True).double()


def loaded_params(torch, cell, tmp_path, seed=0):
    """A real nn.LSTM/nn.GRU, its state dict saved to .npz and loaded back by gradlab."""
    module = torch_module(torch, cell, seed)
    path = tmp_path / f"{cell}.npz"
    np.savez(path, **{k: v.detach().numpy() for k, v in module.state_dict().items()})
    return module, gl.load_gated_weights(path, cell, np.random.default_rng(0))


def torch_states(torch, module, x, cell):
    """Every state s_t of the PyTorch module, step by step: (B, T + 1, state size)."""
    xt = torch.tensor(x)
    h = torch.zeros(1, x.shape[0], N, dtype=torch.float64)
    c = torch.zeros_like(h)
    states = [torch.cat([h[0], c[0]], 1) if cell == "lstm" else h[0]]
    for t in range(x.shape[1]):
        if cell == "lstm":
            _, (h, c) = module(xt[:, t:t + 1], (h, c))
            states.append(torch.cat([h[0], c[0]], 1))
        else:
            _, h = module(xt[:, t:t + 1], h)
            states.append(h[0])
    return torch.stack(states, 1).detach().numpy()


def torch_step(torch, module, x_t, cell):
    """s_{t−1} ↦ s_t for one sequence, as a torch function (for autograd Jacobians)."""
    xt = torch.tensor(x_t[None, None])

    def step(s):
        if cell == "lstm":
            _, (h, c) = module(xt, (s[None, None, :N], s[None, None, N:]))
            return torch.cat([h.reshape(-1), c.reshape(-1)])
        return module(xt, s[None, None])[1].reshape(-1)
    return step


def gated_forward(params, x):
    return gl.forward_gated(params, x)


def state(tr, b, t):
    return np.concatenate([tr.h[b, t], tr.c[b, t]]) if hasattr(tr, "c") else tr.h[b, t]


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_matches_pytorch(torch, cell, tmp_path):
    module, params = loaded_params(torch, cell, tmp_path)
    x = np.random.default_rng(1).standard_normal((B, T, D))
    tr = gated_forward(params, x)
    ours = np.stack([state(tr, b, t) for b in range(B) for t in range(T + 1)]).reshape(B, T + 1, -1)
    assert rel(ours, torch_states(torch, module, x, cell)) < 1e-12
    out, _ = module(torch.tensor(x))
    assert rel(tr.h[:, 1:], out.detach().numpy()) < 1e-12


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_jacobians_match_autograd(torch, cell, tmp_path):
    """J_t = ∂s_t/∂s_{t−1} of the full state ((h, C) for an LSTM) at every step, ≤ 1e-9 relative."""
    module, params = loaded_params(torch, cell, tmp_path, seed=3)
    x = np.random.default_rng(2).standard_normal((B, T, D)) * 2.0
    tr = gated_forward(params, x)
    for t in range(1, T + 1):
        J = tr.jacobian(t)
        for b in range(B):
            ref = torch.autograd.functional.jacobian(torch_step(torch, module, x[b, t - 1], cell),
                                                     torch.tensor(state(tr, b, t - 1))).numpy()
            assert rel(J[b], ref) < 1e-9, (t, b)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_right_multiply_and_vjp_are_products_with_the_autograd_jacobian(torch, cell, tmp_path):
    module, params = loaded_params(torch, cell, tmp_path, seed=4)
    x = np.random.default_rng(3).standard_normal((1, T, D))
    tr = gated_forward(params, x)
    t = 5
    ref = torch.autograd.functional.jacobian(torch_step(torch, module, x[0, t - 1], cell),
                                             torch.tensor(state(tr, 0, t - 1))).numpy()
    P = np.random.default_rng(4).standard_normal((1, 3, tr.state_size))
    assert rel(tr.right_multiply(P, t)[0], P[0] @ ref) < 1e-12
    assert rel(tr.vjp(P[:, 0], t)[0], P[0, 0] @ ref) < 1e-12


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_product_norms_match_autograd_of_the_unrolled_network(torch, cell, tmp_path):
    """‖∂s_T/∂s_k‖₂ from gradlab.analysis.jacobian_norms against autograd through T − k real PyTorch steps."""
    module, params = loaded_params(torch, cell, tmp_path, seed=5)
    x = np.random.default_rng(5).standard_normal((1, T, D))
    tr = gated_forward(params, x)
    jn = gl.jacobian_norms(tr, "last")
    for k, log_norm in zip(jn.k, jn.log_norm[0]):
        def unrolled(s, k=k):
            for t in range(k + 1, T + 1):
                s = torch_step(torch, module, x[0, t - 1], cell)(s)
            return s
        ref = torch.autograd.functional.jacobian(unrolled, torch.tensor(state(tr, 0, k))).numpy()
        assert abs(np.exp(log_norm) / np.linalg.norm(ref, 2) - 1) < 1e-9


def test_loss_gradient_norms_match_autograd(torch, tmp_path):
    """grads.csv of `gradlab run --cell lstm`: ‖∂L/∂(h_k, C_k)‖ against PyTorch backward."""
    module, _ = loaded_params(torch, "lstm", tmp_path, seed=6)
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    rng = np.random.default_rng(6)
    sd["fc.weight"], sd["fc.bias"] = rng.standard_normal((2, N)), rng.standard_normal(2)
    np.savez(tmp_path / "w.npz", **sd)
    x = rng.standard_normal((B, T, D))
    np.save(tmp_path / "x.npy", x)
    result = gl.analyse(gl.RunConfig(cell="lstm", weights=str(tmp_path / "w.npz"),
                                     input_seq=str(tmp_path / "x.npy"), seed=1))
    y = torch.tensor(result.model.y)
    W_hy, b_y = torch.tensor(sd["fc.weight"]), torch.tensor(sd["fc.bias"])
    h = torch.zeros(1, B, N, dtype=torch.float64, requires_grad=True)
    c = torch.zeros(1, B, N, dtype=torch.float64, requires_grad=True)
    states, loss = [(h, c)], 0.0
    for t in range(T):
        _, (h, c) = module(torch.tensor(x[:, t:t + 1]), (h, c))
        h.retain_grad(), c.retain_grad()
        states.append((h, c))
        o = h[0] @ W_hy.T + b_y
        loss = loss + ((o - y[:, t]) ** 2).sum() / 2 / B           # mse over m = 2 outputs, batch mean
    loss.backward()
    assert abs(loss.item() - result.summary["loss"]) < 1e-12 * abs(loss.item())
    grad = lambda v: np.zeros((B, N)) if v.grad is None else v.grad[0].numpy()  # noqa: E731  (C_T: no path to L)
    ref = np.stack([np.linalg.norm(np.concatenate([grad(h), grad(c)], 1), axis=1) for h, c in states], 1)
    assert rel(result.log_grad_norms, np.log(ref)) < 1e-9


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_jacobian_matches_central_differences(cell):
    """No torch: perturb each state coordinate and re-run one step of gradlab's own cell."""
    rng = np.random.default_rng(7)
    params = gl.init_gated_params(cell, N, D, radius=1.5, rng=rng)
    params = params.replace(b_ih=0.3 * rng.standard_normal(params.b_ih.shape),
                            b_hh=0.3 * rng.standard_normal(params.b_hh.shape))
    x = rng.standard_normal((1, T, D))
    h0 = rng.standard_normal((1, N)) * 0.5
    t, eps = 4, 1e-6

    def end_state(s):
        if cell == "lstm":
            tr = gl.forward_lstm(params, x[:, t - 1:t], s[None, :N], s[None, N:])
        else:
            tr = gl.forward_gru(params, x[:, t - 1:t], s[None])
        return state(tr, 0, 1)
    tr = gl.forward_lstm(params, x, h0, 0.3 * h0) if cell == "lstm" else gl.forward_gru(params, x, h0)
    s = state(tr, 0, t - 1)
    fd = np.stack([(end_state(s + eps * e) - end_state(s - eps * e)) / (2 * eps) for e in np.eye(s.size)], 1)
    assert rel(tr.jacobian(t)[0], fd) < 1e-8


def test_cell_state_jacobians_full_against_central_differences():
    """Full ∂C_t/∂C_{t−1} is the derivative with h_{t−1} = o_{t−1} ⊙ tanh(C_{t−1}), o_{t−1} held."""
    rng = np.random.default_rng(8)
    params = gl.init_gated_params("lstm", N, D, radius=2.0, rng=rng)
    x = rng.standard_normal((1, T, D))
    tr = gl.forward_lstm(params, x)
    U = x @ params.W_ih.T + params.b_ih + params.b_hh
    t, eps = 5, 1e-6
    o_prev = 1 / (1 + np.exp(-tr.z[0, t - 2, 3 * N:]))

    def C_t(C_prev):
        h_prev = o_prev * np.tanh(C_prev)
        return lstm_cell(params.W_hh, h_prev[None], C_prev[None], U[:, t - 1])[2][0]
    C = tr.c[0, t - 1]
    fd = np.stack([(C_t(C + eps * e) - C_t(C - eps * e)) / (2 * eps) for e in np.eye(N)], 1)
    full = gl.cell_state_trace(tr, "full").jacobian(t)[0]
    forget = gl.cell_state_trace(tr, "forget").jacobian(t)[0]
    assert rel(full, fd) < 1e-8
    assert np.allclose(forget, np.diag(tr.f[0, t - 1]), rtol=0, atol=0)
    assert rel(forget, full) > 0.05          # the four-term derivative is not diag(f_t)


def test_full_and_forget_only_agree_when_gates_ignore_h():
    """With W_hi = W_hf = W_hg = 0 the three gate terms vanish and full = diag(f_t) exactly."""
    rng = np.random.default_rng(9)
    params = gl.init_gated_params("lstm", N, D, radius=1.5, rng=rng)
    W_hh = params.W_hh.copy()
    W_hh[:3 * N] = 0.0
    tr = gl.forward_lstm(params.replace(W_hh=W_hh), rng.standard_normal((B, T, D)))
    full, forget = gl.cell_state_trace(tr, "full"), gl.cell_state_trace(tr, "forget")
    for t in range(1, T + 1):
        assert np.array_equal(full.jacobian(t), forget.jacobian(t))
    a, b = (gl.jacobian_norms(ct, "all").log_norm for ct in (full, forget))
    assert np.array_equal(a, b)


def test_run_cell_lstm_writes_the_documented_tables(tmp_path):
    result = gl.analyse(gl.RunConfig(cell="lstm", hidden=6, steps=12, batch=2, radius=1.5))
    gl.write_run(result, tmp_path / "run")
    for kind in ("norms", "spectrum", "grads", "cell_state"):
        table = gl.schema.read_table(tmp_path / "run" / f"{kind}.csv", kind)
        numbers = table.select_dtypes("number")
        if kind == "norms":   # no single W_hh whose ρ^(t−k) would be the rate: that column is empty
            assert numbers.pop("log10_rate").isna().all()
        assert np.all(np.isfinite(numbers))
    s = result.summary
    # the same meaning for every cell: ρ, σ_max of the recurrent weights (largest n × n gate block)
    assert s["rho"] == pytest.approx(1.5, rel=1e-12) and s["sigma_max"] >= s["rho"]
    assert np.isnan(s["asymptotic_rate"]) and np.isnan(s["gamma_h"]) and np.isfinite(s["lyapunov"])
    norms = result.tables["norms"]
    # the a-posteriori bound lag·log10 max‖J_t‖ holds for every measured pair
    assert np.all(norms.log10_norm <= norms.log10_bound + 1e-12)
    assert len(result.tables["spectrum"]) == 2 * 12           # 12 eigenvalues + 12 singular values of J_T


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_save_and_load_round_trip_and_bad_shapes(cell, tmp_path):
    p = gl.init_gated_params(cell, 4, 3, m=2, rng=np.random.default_rng(0))
    gl.save_gated_weights(tmp_path / "w.npz", p)
    q = gl.load_gated_weights(tmp_path / "w.npz", cell)
    for name in ("W_ih", "W_hh", "b_ih", "b_hh", "W_hy", "b_y"):
        assert np.array_equal(getattr(p, name), getattr(q, name))
    G = len(GATES[cell])
    np.savez(tmp_path / "bad.npz", weight_ih_l0=np.zeros((G * 4, 3)), weight_hh_l0=np.zeros((4, 4)))
    with pytest.raises(gl.GradlabError, match=r"holds an nn.RNN state dict \(weight_hh_l0 is n × n = 4 × 4\)"):
        gl.load_gated_weights(tmp_path / "bad.npz", cell)
    np.savez(tmp_path / "bad2.npz", weight_ih_l0=np.zeros((G * 4, 3)), weight_hh_l0=np.zeros((G * 4, 4)),
             bias_ih_l0=np.zeros(3))
    with pytest.raises(gl.GradlabError, match="b_ih has shape"):
        gl.load_gated_weights(tmp_path / "bad2.npz", cell)


def test_gated_cells_refuse_another_activation():
    with pytest.raises(gl.GradlabError, match="activation 'relu'"):
        gl.RunConfig(cell="gru", activation="relu")


@pytest.mark.parametrize("output_gate_reads_h", [False, True])
def test_cell_state_products_against_the_total_derivative_of_the_unrolled_lstm(torch, output_gate_reads_h):
    """‖∏ ∂C_j/∂C_{j−1}‖ (the seed's four-term factors, multiplied) and ``exact_cell_state_norms``
    against autograd of C_t with respect to C_k.

    The total derivative perturbs C_k and recomputes everything downstream of
    it with a real ``nn.LSTMCell``: h_k = o_k ⊙ tanh(C_k) (o_k was computed
    from h_{k−1}), then steps k + 1 … t. At lag 1 the four-term factor is that
    derivative exactly. At longer lags the product drops one path: o_j for
    k < j < t depends on h_{j−1}, which C_k has moved. With W_ho = 0 there is
    no such path and the product is exact for every pair; otherwise it is the
    seed's approximation, off by a few per cent here. ``exact_cell_state_norms``
    (the C rows of the full-state product) is exact for every pair either way.
    """
    rng = np.random.default_rng(10)
    p = gl.init_gated_params("lstm", N, D, radius=1.5, rng=rng)
    p = p.replace(b_ih=0.5 * rng.standard_normal(4 * N))
    if not output_gate_reads_h:
        W_hh = p.W_hh.copy()
        W_hh[3 * N:] = 0.0
        p = p.replace(W_hh=W_hh)
    x = rng.standard_normal((1, T, D))
    tr = gl.forward_lstm(p, x)
    full = gl.jacobian_norms(gl.cell_state_trace(tr, "full"), "all", method="svd")
    forget = gl.jacobian_norms(gl.cell_state_trace(tr, "forget"), "all", method="svd")
    total = gl.exact_cell_state_norms(tr, "all")
    assert np.array_equal(total.t, full.t) and np.array_equal(total.k, full.k)

    cell = torch.nn.LSTMCell(D, N, dtype=torch.float64)
    cell.load_state_dict({"weight_ih": torch.tensor(p.W_ih), "weight_hh": torch.tensor(p.W_hh),
                          "bias_ih": torch.tensor(p.b_ih), "bias_hh": torch.tensor(p.b_hh)})
    X = torch.tensor(x[0])
    with torch.no_grad():
        h, c = torch.zeros(1, N, dtype=torch.float64), torch.zeros(1, N, dtype=torch.float64)
        Cs, Os = [c], [None]
        for t in range(T):
            z = X[t:t + 1] @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh + h @ cell.weight_hh.T
            Os.append(torch.sigmoid(z[:, 3 * N:]))
            h, c = cell(X[t:t + 1], (h, c))
            Cs.append(c)
    np.testing.assert_allclose(torch.cat(Cs).numpy(), tr.c[0], rtol=1e-12, atol=1e-14)

    off_at_long_lags = []
    for i, (t, k) in enumerate(zip(full.t, full.k)):
        def C_t(C_k, t=t, k=k):
            h = torch.zeros(1, N, dtype=torch.float64) if k == 0 else Os[k] * torch.tanh(C_k[None])  # h_0 is given
            c = C_k[None]
            for j in range(k + 1, t + 1):
                h, c = cell(X[j - 1:j], (h, c))
            return c[0]
        exact = np.linalg.norm(torch.autograd.functional.jacobian(C_t, Cs[k][0].clone()).numpy(), 2)
        rel_full = abs(np.exp(full.log_norm[0, i]) / exact - 1)
        assert abs(np.exp(total.log_norm[0, i]) / exact - 1) < 1e-10, (t, k)   # the exact block, every pair
        if k > 0:      # from C_0 (h_0 given) the first factor is diag(f_1); past it diag(f) alone is wrong
            assert abs(np.exp(forget.log_norm[0, i]) / exact - 1) > 1e-3, (t, k)
        if t - k == 1 or not output_gate_reads_h:
            assert rel_full < 1e-10, (t, k, rel_full)
        else:
            off_at_long_lags.append(rel_full)
    if output_gate_reads_h:
        assert 1e-3 < max(off_at_long_lags) < 0.2
