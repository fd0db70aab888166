"""Stacked layers (``num_layers = L``): the stacked step Jacobian with its same-step paths through the lower
layers, and BPTT through the stack, against PyTorch autograd of real multi-layer modules and dense products."""
from __future__ import annotations

import numpy as np
import pytest

import gradlab as gl
from gradlab.cells import make_cell
from gradlab.cells.stacked import StackedCell

CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


def torch_module(torch, cell, activation, d, n, L):
    torch.manual_seed(0)
    kw = dict(input_size=d, hidden_size=n, num_layers=L, batch_first=True, dtype=torch.float64)
    if cell == "rnn":
        return torch.nn.RNN(nonlinearity=activation, **kw)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](**kw)


def gradlab_twin(torch, module, cell, activation, L, m, rng):
    """The module's weights in gradlab (through the state-dict loader), with a random read-out."""
    arrays = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    n = module.hidden_size
    arrays["fc.weight"], arrays["fc.bias"] = rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal(m)
    c = make_cell(cell, activation, L)
    return c, c.from_state_dict(arrays, "torch")


def torch_stacked_step(torch, module, cell, n, L):
    """s_{t−1} ↦ s_t of the whole stack (one step of every layer, lower first), as autograd sees it."""
    def step(s_prev, x_t):
        inp, out = x_t, []
        for l in range(L):
            w = lambda name: getattr(module, f"{name}_l{l}")   # noqa: E731
            size = 2 * n if cell == "lstm" else n
            s = s_prev[size * l:size * (l + 1)]
            if cell == "rnn":
                a = w("weight_ih") @ inp + w("bias_ih") + w("weight_hh") @ s + w("bias_hh")
                h = torch.tanh(a) if module.nonlinearity == "tanh" else torch.relu(a)
                out.append(h)
            elif cell == "gru":
                gi, gh = w("weight_ih") @ inp + w("bias_ih"), w("weight_hh") @ s + w("bias_hh")
                r, z = torch.sigmoid(gi[:n] + gh[:n]), torch.sigmoid(gi[n:2 * n] + gh[n:2 * n])
                nn_ = torch.tanh(gi[2 * n:] + r * gh[2 * n:])
                h = (1 - z) * nn_ + z * s
                out.append(h)
            else:
                h_prev, c_prev = s[:n], s[n:]
                g = w("weight_ih") @ inp + w("bias_ih") + w("weight_hh") @ h_prev + w("bias_hh")
                i, f, gg, o = (torch.sigmoid(g[:n]), torch.sigmoid(g[n:2 * n]), torch.tanh(g[2 * n:3 * n]),
                               torch.sigmoid(g[3 * n:]))
                c = f * c_prev + i * gg
                h = o * torch.tanh(c)
                out.append(torch.cat([h, c]))
            inp = h
        return torch.cat(out)
    return step


@pytest.mark.parametrize("cell,activation", CASES)
def test_stacked_forward_step_jacobian_and_gradients_match_torch(torch, cell, activation):
    d, n, L, m, B, T = 3, 4, 3, 2, 2, 6
    rng = np.random.default_rng(1)
    module = torch_module(torch, cell, activation, d, n, L)
    c, p = gradlab_twin(torch, module, cell, activation, L, m, rng)
    x = rng.standard_normal((B, T, d))
    y = rng.standard_normal((B, T, m))
    tr = c.forward(p, x)

    X = torch.tensor(x)
    out, _ = module(X)
    np.testing.assert_allclose(tr.h[:, 1:], out.detach().numpy(), rtol=1e-12, atol=1e-13)

    # step Jacobian of the whole stack at t = 4, with the paths through the lower layers of the same step
    step = torch_stacked_step(torch, module, cell, n, L)
    states = torch.tensor(tr.states())
    for b in range(B):
        J = torch.autograd.functional.jacobian(lambda s: step(s, X[b, 3]), states[b, 3]).numpy()
        np.testing.assert_allclose(tr.jacobian(4)[b], J, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(c.forward(p, x[b:b + 1, 3:4], tr.states()[b:b + 1, 3]).states()[0, 1],
                                   step(states[b, 3], X[b, 3]).detach().numpy(), rtol=1e-12, atol=1e-13)

    # BPTT through the stack against autograd of the module + read-out
    g = gl.gradients(c, p, x, y, "mse", "all")
    W_hy, b_y = torch.tensor(p.W_hy, requires_grad=True), torch.tensor(p.b_y, requires_grad=True)
    module.zero_grad()
    out, _ = module(X)
    loss = (((out @ W_hy.T + b_y) - torch.tensor(y)) ** 2).sum() / m / B
    loss.backward()
    assert g.loss == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(g.grads["W_hy"], W_hy.grad.numpy(), rtol=1e-10, atol=1e-13)
    for l in range(L):
        if cell == "rnn":
            expected = {f"W_xh_l{l}": f"weight_ih_l{l}", f"W_hh_l{l}": f"weight_hh_l{l}", f"b_h_l{l}": f"bias_ih_l{l}"}
        else:
            expected = {f"{a}_l{l}": f"{b}_l{l}" for a, b in
                        (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh"))}
        for ours, theirs in expected.items():
            np.testing.assert_allclose(g.grads[ours], getattr(module, theirs).grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=ours)


def test_one_layer_is_the_cell_itself_and_the_stack_round_trips_its_state_dict():
    assert make_cell("gru", layers=1) == make_cell("gru")
    c = make_cell("lstm", layers=2)
    assert isinstance(c, StackedCell)
    p = c.init_params(4, 3, 2, rng=np.random.default_rng(0))
    q = c.from_state_dict(c.state_dict(p), "round trip")
    for key, value in p.as_dict().items():
        assert np.array_equal(value, q.as_dict()[key]), key
    with pytest.raises(gl.GradlabError, match="layers must be a whole number ≥ 1"):
        make_cell("rnn", layers=0)


def test_per_layer_blocks_equal_the_blocks_of_the_dense_product():
    result = gl.analyse(gl.RunConfig(cell="rnn", layers=2, hidden=4, steps=7, batch=2, radius=1.3, pairs="all"))
    tr, table = result.trace, result.tables["layers"]
    assert set(table.layer) == {1, 2} and len(table) == 2 * 2 * 7 * 8 // 2
    for row in table.sample(12, random_state=0).itertuples():
        P = np.eye(8)[None].repeat(2, 0)
        for j in range(row.t, row.k, -1):
            P = P @ tr.jacobian(j)
        o = 4 * (row.layer - 1)
        block = P[row.seq, o:o + 4, o:o + 4]
        assert row.log10_norm == pytest.approx(np.log10(np.linalg.norm(block, 2)), abs=1e-11)


def test_gradlab_check_and_train_take_layers(capsys):
    from gradlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["check", "--cell", "gru", "--layers", "2", "--hidden", "3", "--inputs", "2", "--steps", "5",
              "--batch", "2"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "PASS" in out and "W_hh_l1" in out, out
    r = gl.train(gl.TrainConfig(task="adding", cell="lstm", layers=2, steps=8, hidden=5, updates=5, eval_batch=8,
                                eval_every=5, optimizer="adam", lr=0.01))
    assert r.tables["training"]["skipped"].sum() == 0


def test_a_stacks_kink_sides_are_each_layers_sides_as_one_array():
    """The gradient check compares kink sides of perturbed and unperturbed passes; a stack's are (L, B, T, n)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3))
    relu = make_cell("rnn", "relu", layers=3)
    trace = relu.forward(relu.init_params(4, 3, 2, rng=rng), x)
    sides = trace.kink_sides()
    assert isinstance(sides, np.ndarray) and sides.shape == (3, 2, 5, 4)
    for layer, tr in enumerate(trace.layers):
        np.testing.assert_array_equal(sides[layer], (tr.a > 0).astype(np.int8))
    tanh = make_cell("rnn", "tanh", layers=2)
    assert tanh.forward(tanh.init_params(4, 3, 2, rng=rng), x).kink_sides() is None
