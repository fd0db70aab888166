"""LSTM and GRU through the Cell protocol: exact and truncated BPTT gradients, input Jacobians.

The gradient under test is ``trace.param_grads(adjoints(trace, direct))``
plus the read-out's Σ ∂L/∂o_t h_tᵀ, the path every cell takes
(:mod:`gradlab.analysis.bptt`). It is checked against

* PyTorch autograd through real ``nn.LSTM`` / ``nn.GRU`` modules (float64),
  their weights copied into gradlab as a user would (``from_state_dict``),
  at ≤ 1e-9 relative: both sides compute the same sums in a different order,
  so they agree to ~1e-15; 1e-9 leaves room for that and nothing else;
* central differences of gradlab's own loss, at ≤ 1e-7 relative (see
  :func:`test_param_grads_match_central_differences` for why);
* a brute-force truncated BPTT in torch that detaches the state K + 1 steps
  before each loss step.

Relative errors are max|ours − ref| / max|ref| per parameter.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import draw_targets
from gradlab.analysis.bptt import adjoints, loss_step_indices, output_errors, truncated_adjoints
from gradlab.cells.base import Cell, StateTrace, sum_outer
from gradlab.cells.gru import GRUCell, forward_gru
from gradlab.cells.lstm import CellStateTrace, LSTMCell, cell_state_trace, forward_lstm
from gradlab.errors import GradlabError

N, D, M, T, B = 4, 3, 2, 6, 2
CELLS = {"lstm": LSTMCell(), "gru": GRUCell()}
TORCH_NAMES = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0",
               "W_hy": "fc.weight", "b_y": "fc.bias"}


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def torch_pair(torch, cell: str, seed: int = 0):
    """A real nn.LSTM / nn.GRU with an nn.Linear read-out (float64, PyTorch's default init: every
    bias non-zero), and the same weights as gradlab parameters via ``from_state_dict``."""
    torch.manual_seed(seed)
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    module = cls(D, N, batch_first=True, dtype=torch.float64)
    fc = torch.nn.Linear(N, M, dtype=torch.float64)
    arrays = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    arrays.update({f"fc.{k}": v.detach().numpy().copy() for k, v in fc.state_dict().items()})
    return module, fc, CELLS[cell].from_state_dict(arrays, "torch modules")


def state_size(cell: str) -> int:
    return 2 * N if cell == "lstm" else N


def draw_inputs(rng, tokens: bool):
    return rng.integers(0, D, size=(B, T)) if tokens else rng.standard_normal((B, T, D))


def torch_inputs(torch, x):
    """Token ids enter nn.LSTM / nn.GRU as one-hot vectors (what gradlab's W_ih[:, x_t] means)."""
    if np.issubdtype(x.dtype, np.integer):
        return torch.nn.functional.one_hot(torch.tensor(x), D).double()
    return torch.tensor(x)


def torch_state(torch, cell, s):
    """gradlab's state (B, s) as the module's (h0, c0) / h0."""
    s = torch.as_tensor(s)
    return (s[None, :, :N].contiguous(), s[None, :, N:].contiguous()) if cell == "lstm" else s[None].contiguous()


def step_loss(torch, o, y_t, loss):
    """L_t averaged over the batch, as gradlab defines it (mse: mean over the m outputs)."""
    if loss == "mse":
        return ((o - torch.tensor(y_t)) ** 2).mean(-1).sum() / B
    return torch.nn.functional.cross_entropy(o, torch.tensor(y_t), reduction="sum") / B


def target_at(y, t, loss_steps):
    return y[:, t - 1] if loss_steps == "all" else y


def torch_param_grads(module, fc):
    """The accumulated ``.grad`` of every parameter, under gradlab's names."""
    tensors = dict(module.named_parameters(), **{f"fc.{k}": v for k, v in fc.named_parameters()})
    return {name: tensors[key].grad.numpy().copy() for name, key in TORCH_NAMES.items()}


def torch_grads(torch, module, fc, x, y, loss, loss_steps, s0=None):
    """Loss, autograd gradients (gradlab names) and ∂L/∂s_0 of the whole unrolled module."""
    module.zero_grad(), fc.zero_grad()
    cell = "lstm" if isinstance(module, torch.nn.LSTM) else "gru"
    state = torch_state(torch, cell, np.zeros((B, state_size(cell))) if s0 is None else s0)
    for v in (state if cell == "lstm" else (state,)):
        v.requires_grad_(True)
    out, _ = module(torch_inputs(torch, x), state)
    L = sum(step_loss(torch, fc(out[:, t - 1]), target_at(y, t, loss_steps), loss)
            for t in loss_step_indices(loss_steps, T))
    L.backward()
    ds0 = torch.cat([v.grad[0] for v in state], 1) if cell == "lstm" else state.grad[0]
    return L.item(), torch_param_grads(module, fc), ds0.numpy()


def gradlab_grads(cell, params, x, y, loss, loss_steps, s0=None, K=None):
    """Loss, gradients and adjoints by the protocol: param_grads of the (truncated) adjoints plus the read-out."""
    tr = cell.forward(params, x, s0)
    L, g_o, direct = output_errors(params, tr, y, loss, loss_steps)
    steps = loss_step_indices(loss_steps, tr.T)
    direct = tr.embed_h(direct)
    lam = adjoints(tr, direct) if K is None else truncated_adjoints(tr, direct, steps, K)
    grads = tr.param_grads(lam)
    grads["W_hy"] = sum_outer(g_o, tr.h[:, steps])
    grads["b_y"] = g_o.sum(axis=(0, 1))
    return L, grads, lam, tr


@pytest.mark.parametrize("tokens", [False, True], ids=["real", "tokens"])
@pytest.mark.parametrize("loss_steps", ["all", "last"])
@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_param_grads_match_torch_autograd(torch, cell, loss, loss_steps, tokens):
    module, fc, params = torch_pair(torch, cell, seed=1)
    rng = np.random.default_rng(2)
    x, y = draw_inputs(rng, tokens), draw_targets(rng, loss, loss_steps, B, T, M)
    L, grads, _, _ = gradlab_grads(CELLS[cell], params, x, y, loss, loss_steps)
    L_ref, ref, _ = torch_grads(torch, module, fc, x, y, loss, loss_steps)
    assert abs(L - L_ref) <= 1e-12 * abs(L_ref)
    assert set(grads) == set(TORCH_NAMES)
    for name in TORCH_NAMES:
        assert grads[name].shape == ref[name].shape, name
        assert rel(grads[name], ref[name]) < 1e-9, (name, rel(grads[name], ref[name]))


def test_gru_hidden_and_input_n_biases_get_different_gradients(torch):
    """b_hn sits inside r ⊙ (W_hn h + b_hn), b_in outside: the n blocks of ∂L/∂b_hh and ∂L/∂b_ih
    differ by the factor r."""
    module, fc, params = torch_pair(torch, "gru", seed=3)
    rng = np.random.default_rng(3)
    x, y = draw_inputs(rng, False), draw_targets(rng, "mse", "all", B, T, M)
    _, g, _, _ = gradlab_grads(GRUCell(), params, x, y, "mse", "all")
    _, ref, _ = torch_grads(torch, module, fc, x, y, "mse", "all")
    assert rel(g["b_hh"][2 * N:], ref["b_hh"][2 * N:]) < 1e-9
    assert rel(g["b_ih"][2 * N:], ref["b_ih"][2 * N:]) < 1e-9
    assert rel(g["b_hh"][2 * N:], g["b_ih"][2 * N:]) > 1e-2          # not the same number
    assert np.array_equal(g["b_hh"][:2 * N], g["b_ih"][:2 * N])      # r and z: the biases only add


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_nonzero_initial_state_matches_torch(torch, cell):
    """s0 = (h0, C0) / h0: the same gradients as torch from that state, and λ_0 = ∂L/∂s_0 is
    torch's h0.grad (and c0.grad)."""
    module, fc, params = torch_pair(torch, cell, seed=4)
    rng = np.random.default_rng(4)
    s0 = rng.standard_normal((B, state_size(cell)))
    x, y = draw_inputs(rng, False), draw_targets(rng, "xent", "all", B, T, M)
    L, grads, lam, tr = gradlab_grads(CELLS[cell], params, x, y, "xent", "all", s0=s0)
    L_ref, ref, ds0 = torch_grads(torch, module, fc, x, y, "xent", "all", s0=s0)
    assert np.array_equal(tr.states()[:, 0], s0)
    assert abs(L - L_ref) <= 1e-12 * abs(L_ref)
    for name in TORCH_NAMES:
        assert rel(grads[name], ref[name]) < 1e-9, name
    assert rel(lam[:, 0], ds0) < 1e-9
    # the zero-state gradient is a different number: s0 mattered
    assert rel(gradlab_grads(CELLS[cell], params, x, y, "xent", "all")[1]["W_hh"], ref["W_hh"]) > 1e-3
    # the public wrappers start from the same state
    old = forward_lstm(params, x, s0[:, :N], s0[:, N:]) if cell == "lstm" else forward_gru(params, x, s0)
    assert np.array_equal(old.states(), tr.states())


@pytest.mark.parametrize("loss_steps", ["all", "last"])
@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_param_grads_match_central_differences(cell, loss, loss_steps):
    """No torch: perturb every entry of every parameter and re-run gradlab's forward pass.

    Central differences err by ≈ ε²|L'''|/6 + ε_mach|L|/ε; with ε = 1e-5 and
    |L| = O(1) that is ~1e-11 absolute against gradients of order 0.01–1
    (measured: ≤ 2e-9 relative), so 1e-7 relative (of each parameter's
    largest entry) holds with a 50× margin, while a wrong term in any
    gradient is off by far more.
    """
    rng = np.random.default_rng(5)
    c = CELLS[cell]
    params = c.init_params(N, D, M, radius=1.3, rng=rng)
    params = params.replace(b_ih=0.5 * rng.standard_normal(params.b_ih.shape),
                            b_hh=0.5 * rng.standard_normal(params.b_hh.shape),
                            b_y=0.5 * rng.standard_normal(M))
    x, y = draw_inputs(rng, False), draw_targets(rng, loss, loss_steps, B, T, M)
    s0 = 0.5 * rng.standard_normal((B, state_size(cell)))
    _, grads, _, _ = gradlab_grads(c, params, x, y, loss, loss_steps, s0=s0)
    eps = 1e-5

    def loss_at(name, index, delta):
        value = getattr(params, name).copy()
        value[index] += delta
        return output_errors(params.replace(**{name: value}), c.forward(params.replace(**{name: value}), x, s0),
                             y, loss, loss_steps)[0]

    for name in TORCH_NAMES:
        shape = getattr(params, name).shape
        fd = np.array([(loss_at(name, i, eps) - loss_at(name, i, -eps)) / (2 * eps)
                       for i in np.ndindex(shape)]).reshape(shape)
        assert rel(grads[name], fd) < 1e-7, (name, rel(grads[name], fd))


def torch_step_of_input(torch, module, cell, s_prev):
    """x_t ↦ s_t for one sequence with s_{t−1} held, as a torch function (for autograd Jacobians)."""
    def step(x_t):
        if cell == "lstm":
            h, c = (torch.tensor(s_prev[None, None, :N]), torch.tensor(s_prev[None, None, N:]))
            _, (h, c) = module(x_t[None, None], (h, c))
            return torch.cat([h.reshape(-1), c.reshape(-1)])
        return module(x_t[None, None], torch.tensor(s_prev[None, None]))[1].reshape(-1)
    return step


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_input_right_multiply_matches_autograd_input_jacobian(torch, cell):
    """P K_t with K_t = ∂s_t/∂x_t from torch.autograd.functional.jacobian of one real module step, every t."""
    module, _, params = torch_pair(torch, cell, seed=6)
    rng = np.random.default_rng(6)
    x = 2.0 * draw_inputs(rng, False)
    tr = CELLS[cell].forward(params, x, 0.5 * rng.standard_normal((B, state_size(cell))))
    P = rng.standard_normal((B, 3, tr.state_size))
    for t in range(1, T + 1):
        out = tr.input_right_multiply(P, t)
        assert out.shape == (B, 3, D)
        for b in range(B):
            K = torch.autograd.functional.jacobian(torch_step_of_input(torch, module, cell, tr.states()[b, t - 1]),
                                                   torch.tensor(x[b, t - 1])).numpy()
            assert K.shape == (tr.state_size, D)
            assert rel(out[b], P[b] @ K) < 1e-9, (t, b)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_loss_gradient_wrt_inputs_is_adjoint_times_input_jacobian(torch, cell):
    """∂L/∂x_t = λ_t K_t (λ_t = ∂L/∂s_t from ``adjoints``) against torch's x.grad."""
    module, fc, params = torch_pair(torch, cell, seed=7)
    rng = np.random.default_rng(7)
    x, y = draw_inputs(rng, False), draw_targets(rng, "mse", "all", B, T, M)
    _, _, lam, tr = gradlab_grads(CELLS[cell], params, x, y, "mse", "all")
    ours = np.stack([tr.input_right_multiply(lam[:, t, None], t)[:, 0] for t in range(1, T + 1)], 1)
    xt = torch.tensor(x, requires_grad=True)
    out, _ = module(xt)
    sum(step_loss(torch, fc(out[:, t - 1]), y[:, t - 1], "mse") for t in range(1, T + 1)).backward()
    assert rel(ours, xt.grad.numpy()) < 1e-9


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_input_jacobian_of_token_inputs_is_refused(cell):
    c = CELLS[cell]
    params = c.init_params(N, D, M, rng=np.random.default_rng(0))
    tr = c.forward(params, np.zeros((B, T), dtype=int))
    with pytest.raises(GradlabError, match="token ids"):
        tr.input_right_multiply(np.ones((B, 1, tr.state_size)), 1)


def torch_truncated_grads(torch, module, fc, x, y, loss, loss_steps, K):
    """Brute-force truncated BPTT: the loss at step t sees the state of step t − K − 1 as a constant.

    For every loss step t the module is re-run over steps t − K … t from
    s_{t−K−1}.detach() (s_0 when t ≤ K), so L_t's gradient reaches exactly the
    K + 1 steps t − K … t; the gradients of all L_t are summed.
    """
    cell = "lstm" if isinstance(module, torch.nn.LSTM) else "gru"
    module.zero_grad(), fc.zero_grad()
    xt = torch_inputs(torch, x)
    with torch.no_grad():                      # s_0 … s_T, as constants
        state, states = torch_state(torch, cell, np.zeros((B, state_size(cell)))), []
        states.append(state)
        for t in range(T):
            state = module(xt[:, t:t + 1], state)[1]
            states.append(state)
    for t in loss_step_indices(loss_steps, T):
        a = max(0, t - K - 1)
        start = tuple(v.detach() for v in states[a]) if cell == "lstm" else states[a].detach()
        out, _ = module(xt[:, a:t], start)
        step_loss(torch, fc(out[:, -1]), target_at(y, t, loss_steps), loss).backward()
    return torch_param_grads(module, fc)


@pytest.mark.parametrize("loss_steps", ["all", "last"])
@pytest.mark.parametrize("K", [0, 1, 3])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_truncated_grads_match_brute_force_truncation(torch, cell, K, loss_steps):
    module, fc, params = torch_pair(torch, cell, seed=8)
    rng = np.random.default_rng(8)
    x, y = draw_inputs(rng, False), draw_targets(rng, "mse", loss_steps, B, T, M)
    _, trunc, _, _ = gradlab_grads(CELLS[cell], params, x, y, "mse", loss_steps, K=K)
    ref = torch_truncated_grads(torch, module, fc, x, y, "mse", loss_steps, K)
    _, exact, _, _ = gradlab_grads(CELLS[cell], params, x, y, "mse", loss_steps)
    for name in TORCH_NAMES:
        assert rel(trunc[name], ref[name]) < 1e-9, (name, rel(trunc[name], ref[name]))
    assert rel(trunc["W_hh"], exact["W_hh"]) > 1e-4          # truncation changed the answer (T > K + 1)


@pytest.mark.parametrize("tokens", [False, True], ids=["real", "tokens"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_truncation_at_T_minus_1_or_more_is_the_exact_gradient(cell, tokens):
    rng = np.random.default_rng(9)
    c = CELLS[cell]
    params = c.init_params(N, D, M, radius=1.5, rng=rng)
    x, y = draw_inputs(rng, tokens), draw_targets(rng, "xent", "all", B, T, M)
    _, exact, _, _ = gradlab_grads(c, params, x, y, "xent", "all")
    for K in (T - 1, T, 3 * T):
        _, trunc, _, _ = gradlab_grads(c, params, x, y, "xent", "all", K=K)
        for name in TORCH_NAMES:
            assert rel(trunc[name], exact[name]) < 1e-12, (K, name)
    _, short, _, _ = gradlab_grads(c, params, x, y, "xent", "all", K=T - 2)
    # one step less is not exact: L_T no longer reaches step 1 (W_ih, not W_hh: h_0 = 0 gives W_hh nothing there)
    assert rel(short["W_ih"], exact["W_ih"]) > 1e-8


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cells_implement_the_protocol_and_state_dicts_round_trip(torch, cell):
    c = CELLS[cell]
    assert isinstance(c, Cell) and c.name == cell and c.param_names == ("W_ih", "W_hh", "b_ih", "b_hh")
    assert c == type(c)()
    rng = np.random.default_rng(10)
    params = c.init_params(N, D, M, radius=1.2, rng=rng)
    params = params.replace(b_ih=rng.standard_normal(params.b_ih.shape), b_hh=rng.standard_normal(params.b_hh.shape))
    sd = c.state_dict(params)
    back = c.from_state_dict(sd, "round trip")
    for name in ("W_ih", "W_hh", "b_ih", "b_hh", "W_hy", "b_y"):
        assert np.array_equal(getattr(back, name), getattr(params, name)), name
    # the non-fc keys load into the real module, which then computes gradlab's states
    module = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(D, N, batch_first=True, dtype=torch.float64)
    module.load_state_dict({k: torch.tensor(v) for k, v in sd.items() if not k.startswith("fc.")})
    x = draw_inputs(rng, False)
    tr = c.forward(params, x)
    assert isinstance(tr, StateTrace) and tr.states().shape == (B, T + 1, state_size(cell))
    assert rel(tr.h[:, 1:], module(torch.tensor(x))[0].detach().numpy()) < 1e-12
    if cell == "lstm":
        assert np.array_equal(tr.states(), np.concatenate([tr.h, tr.c], axis=2))
    blocks = c.recurrent_blocks(params)
    assert list(blocks) == [f"W_h{q}" for q in ("ifgo" if cell == "lstm" else "rzn")]
    assert np.array_equal(np.concatenate(list(blocks.values())), params.W_hh)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bad_state_dicts_params_and_adjoints_are_one_line_errors(cell):
    c, other = CELLS[cell], CELLS["gru" if cell == "lstm" else "lstm"]
    params = c.init_params(N, D, M, rng=np.random.default_rng(11))
    sd = c.state_dict(params)
    with pytest.raises(GradlabError, match=r"'my\.npz' lacks weight_hh_l0"):
        c.from_state_dict({k: v for k, v in sd.items() if k != "weight_hh_l0"}, "my.npz")
    with pytest.raises(GradlabError, match=r"weight_hh_l0 in 'my\.npz' has shape \(4, 4\)"):
        c.from_state_dict({**sd, "weight_hh_l0": np.zeros((N, N))}, "my.npz")
    with pytest.raises(GradlabError, match=r"'my\.npz': (lstm|gru) b_hh has shape \(4,\)"):
        c.from_state_dict({**sd, "bias_hh_l0": np.zeros(N)}, "my.npz")
    with pytest.raises(GradlabError, match="needs GatedParams"):
        other.forward(params, np.zeros((B, T, D)))
    with pytest.raises(GradlabError, match=r"initial state must have shape"):
        c.forward(params, np.zeros((B, T, D)), np.zeros((B, N + 1)))
    tr = c.forward(params, np.zeros((B, T, D)))
    with pytest.raises(GradlabError, match=r"adjoints must have shape") as e:
        tr.param_grads(np.zeros((B, T, tr.state_size)))
    assert "\n" not in str(e.value)


def test_cell_state_trace_is_a_state_trace():
    params = LSTMCell().init_params(N, D, M, rng=np.random.default_rng(12))
    tr = LSTMCell().forward(params, np.random.default_rng(12).standard_normal((B, T, D)))
    chain = cell_state_trace(tr, "full")
    assert isinstance(chain, CellStateTrace) and isinstance(chain, StateTrace)
    assert (chain.B, chain.T, chain.n, chain.state_size) == (B, T, N, N)
    assert np.array_equal(chain.states(), tr.c)
    P = np.random.default_rng(13).standard_normal((B, 3, N))
    # the vector form agrees with the block form, row by row
    assert np.allclose(chain.vjp(P[:, 0], 4), chain.right_multiply(P, 4)[:, 0], rtol=1e-14, atol=0)
