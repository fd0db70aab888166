"""An independent implementation: PyTorch autograd in float64 on the same weights.

tanh and ReLU nets run through ``torch.nn.RNN`` (our weights loaded into its
state dict) with a ``torch.nn.Linear`` read-out; sigmoid and linear nets, which
``nn.RNN`` does not offer, through a hand-written loop in torch. Losses,
gradients of every parameter, ∂L/∂h_k and ‖∂h_t/∂h_k‖₂ must agree to 1e-9
relative. Needs torch (the ``torch`` fixture in conftest.py).
"""
import itertools

import numpy as np
import pytest

import gradlab as gl
from conftest import draw_targets, make_model

ACTIVATIONS = list(gl.ACTIVATIONS)
REL = 1e-9


class TorchRNN:
    """The RNN of ``params`` in torch: ``states(X, h0)`` → h_1 … h_T, (B, T, n)."""

    def __init__(self, torch, params: gl.RNNParams, activation: str, use_nn_rnn: bool = True):
        self.torch, self.activation = torch, activation
        f64 = torch.float64
        n, d, m = params.n, params.d, params.m
        self.rnn = None
        if use_nn_rnn and activation in ("tanh", "relu"):
            self.rnn = torch.nn.RNN(d, n, nonlinearity=activation, batch_first=True, dtype=f64)
            self.rnn.load_state_dict({
                "weight_ih_l0": torch.tensor(params.W_xh), "weight_hh_l0": torch.tensor(params.W_hh),
                "bias_ih_l0": torch.tensor(params.b_h), "bias_hh_l0": torch.zeros(n, dtype=f64)})
            self.leaves = {"W_xh": self.rnn.weight_ih_l0, "W_hh": self.rnn.weight_hh_l0, "b_h": self.rnn.bias_ih_l0}
        else:
            self.leaves = {name: torch.tensor(getattr(params, name), requires_grad=True)
                           for name in ("W_xh", "W_hh", "b_h")}
        self.fc = torch.nn.Linear(n, m, dtype=f64)
        self.fc.load_state_dict({"weight": torch.tensor(params.W_hy), "bias": torch.tensor(params.b_y)})
        self.leaves.update(W_hy=self.fc.weight, b_y=self.fc.bias)
        self.d = d

    def inputs(self, x):
        torch = self.torch
        if np.issubdtype(x.dtype, np.integer):
            return torch.nn.functional.one_hot(torch.tensor(x), self.d).to(torch.float64)
        return torch.tensor(x)

    def phi(self, a):
        torch = self.torch
        return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda v: v}[self.activation](a)

    def states(self, X, h0, keep=None):
        """h_1 … h_T (B, T, n); ``keep`` (a list) receives every h_t of the hand loop."""
        if self.rnn is not None and keep is None:
            return self.rnn(X, h0[None])[0]
        W_xh, W_hh, b_h = self.leaves["W_xh"], self.leaves["W_hh"], self.leaves["b_h"]
        h, hs = h0, []
        for t in range(X.shape[1]):
            h = self.phi(X[:, t] @ W_xh.T + h @ W_hh.T + b_h)
            if keep is not None:
                h.retain_grad()
                keep.append(h)
            hs.append(h)
        return self.torch.stack(hs, dim=1)

    def loss(self, H, y, loss, loss_steps):
        torch = self.torch
        O = self.fc(H if loss_steps == "all" else H[:, -1:])
        B, S, m = O.shape
        if loss == "xent":
            return torch.nn.functional.cross_entropy(O.reshape(-1, m), torch.tensor(y).reshape(-1), reduction="sum") / B
        return ((O - torch.tensor(y).reshape(B, S, m)) ** 2).mean(dim=-1).sum() / B


def assert_rel_close(ours, ref, rel=REL, name=""):
    ref = np.asarray(ref)
    scale = np.abs(ref).max()
    assert scale > 0, f"{name}: the reference is zero, the comparison would prove nothing"
    err = np.abs(np.asarray(ours) - ref).max() / scale
    assert err <= rel, f"{name}: relative difference {err:.3g} > {rel:g}"


CASES = list(itertools.product(ACTIVATIONS, ["mse", "xent"], ["all", "last"], [False, True]))


@pytest.mark.parametrize("activation, loss, loss_steps, tokens", CASES)
def test_loss_and_every_gradient_match_torch_autograd(torch, activation, loss, loss_steps, tokens):
    B, T, n, d, m = 2, 6, 4, 3, 3
    p, x = make_model(activation, n, d, m, B, T, tokens)
    y = draw_targets(np.random.default_rng(1), loss, loss_steps, B, T, m)
    ours = gl.loss_and_grads(p, x, y, activation, loss, loss_steps)

    net = TorchRNN(torch, p, activation)
    L = net.loss(net.states(net.inputs(x), torch.zeros(B, n, dtype=torch.float64)), y, loss, loss_steps)
    L.backward()
    assert ours.loss == pytest.approx(L.item(), rel=1e-12)
    for name in gl.PARAM_NAMES:
        assert_rel_close(ours.grads[name], net.leaves[name].grad.numpy(), name=name)
    if net.rnn is not None:  # the two PyTorch biases get the same gradient as our single b_h
        assert_rel_close(ours.grads["b_h"], net.rnn.bias_hh_l0.grad.numpy(), name="bias_hh_l0")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss, loss_steps", [("xent", "all"), ("mse", "last")])
def test_dL_dh_matches_torch_retained_state_gradients(torch, activation, loss, loss_steps):
    B, T, n, d, m = 2, 5, 4, 3, 3
    p, x = make_model(activation, n, d, m, B, T)
    y = draw_targets(np.random.default_rng(2), loss, loss_steps, B, T, m)
    ours = gl.loss_and_grads(p, x, y, activation, loss, loss_steps).dL_dh

    net = TorchRNN(torch, p, activation, use_nn_rnn=False)
    h0 = torch.zeros(B, n, dtype=torch.float64, requires_grad=True)
    kept = []
    net.loss(net.states(net.inputs(x), h0, keep=kept), y, loss, loss_steps).backward()
    theirs = np.stack([h0.grad.numpy()] + [h.grad.numpy() for h in kept], axis=1)  # (B, T + 1, n)
    assert_rel_close(ours, theirs, name="dL/dh")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jacobian_product_norms_match_torch(torch, activation):
    """‖∂h_t/∂h_k‖₂ for every pair: torch.autograd.functional.jacobian + matrix_norm(ord=2)."""
    B, T, n, d = 2, 6, 4, 3
    p, x = make_model(activation, n, d, 2, B, T, radius=1.5)
    jn = gl.jacobian_norms(gl.forward(p, x, activation), "all")
    ours = {(t, k): np.exp(jn.log_norm[:, i]) for i, (t, k) in enumerate(zip(jn.t, jn.k))}

    net = TorchRNN(torch, p, activation)
    X = net.inputs(x)
    with torch.no_grad():
        H = torch.cat([torch.zeros(B, 1, n, dtype=torch.float64), net.states(X, torch.zeros(B, n, dtype=torch.float64))], 1)
    np.testing.assert_allclose(gl.forward(p, x, activation).h, H.numpy(), rtol=1e-12, atol=1e-14)
    for b, k in itertools.product(range(B), range(T)):
        # h_k ↦ (h_{k+1}, …, h_T) run from step k + 1 with the same inputs: Jacobian (T − k, n, n).
        states_from_k = lambda h_k: net.states(X[b:b + 1, k:], h_k[None])[0]  # noqa: E731
        J = torch.autograd.functional.jacobian(states_from_k, H[b, k].clone())
        norms = torch.linalg.matrix_norm(J, ord=2).numpy()
        for t in range(k + 1, T + 1):
            assert ours[(t, k)][b] == pytest.approx(norms[t - k - 1], rel=REL)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_a_real_nn_rnn_state_dict_loads_and_gives_torchs_states(torch, tmp_path, nonlinearity):
    """What a user does: train in PyTorch, np.savez the state_dict, analyse with gradlab."""
    torch.manual_seed(0)
    rnn = torch.nn.RNN(3, 5, nonlinearity=nonlinearity, batch_first=True)   # float32, as trained
    fc = torch.nn.Linear(5, 2)
    arrays = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
    arrays.update({f"fc.{k}": v.detach().numpy() for k, v in fc.state_dict().items()})
    np.savez(tmp_path / "rnn.npz", **arrays)

    p = gl.load_weights(tmp_path / "rnn.npz")
    assert (p.n, p.d, p.m) == (5, 3, 2) and p.W_hh.dtype == np.float64
    np.testing.assert_array_equal(p.W_hh, arrays["weight_hh_l0"].astype(np.float64))
    np.testing.assert_array_equal(p.b_h, arrays["bias_ih_l0"].astype(np.float64) + arrays["bias_hh_l0"])
    np.testing.assert_array_equal(p.W_hy, arrays["fc.weight"].astype(np.float64))

    x = np.random.default_rng(3).standard_normal((2, 8, 3))
    ours = gl.forward(p, x, nonlinearity).h[:, 1:]
    with torch.no_grad():
        theirs64 = rnn.double()(torch.tensor(x))[0].numpy()
        theirs32 = rnn.float()(torch.tensor(x, dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(ours, theirs64, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours, theirs32, rtol=0, atol=1e-5)  # float32 rounding only
