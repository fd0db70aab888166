"""Activations: values, derivatives against central differences, γ_h = sup|φ'|."""
import numpy as np
import pytest

import gradlab as gl

# Reference values written independently of gradlab (the textbook formulas).
REFERENCE = {
    "tanh": np.tanh,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "relu": lambda a: np.maximum(a, 0.0),
    "linear": lambda a: a,
}
GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "linear": 1.0}


def central_difference(f, a, eps):
    return (f(a + eps) - f(a - eps)) / (2 * eps)


@pytest.mark.parametrize("name", list(gl.ACTIVATIONS))
def test_value_matches_textbook_formula(name):
    a = np.linspace(-30, 30, 2001)
    np.testing.assert_allclose(gl.get_activation(name)(a), REFERENCE[name](a), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("name", list(gl.ACTIVATIONS))
def test_derivative_matches_central_differences(name):
    act = gl.get_activation(name)
    a = np.linspace(-6, 6, 2401)
    a = a[np.abs(a) > 1e-3]  # ReLU's kink at 0 has no derivative; stay clear of it
    eps = 1e-6
    fd = central_difference(act, a, eps)
    # Central differences: error O(eps² φ''') + O(1e-16 / eps) ≈ 1e-10.
    np.testing.assert_allclose(act.derivative(a), fd, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", list(gl.ACTIVATIONS))
def test_value_and_derivative_agree_with_separate_calls(name):
    act = gl.get_activation(name)
    a = np.random.default_rng(0).standard_normal((3, 4, 5)) * 4
    value, dphi = act.value_and_derivative(a)
    assert value.shape == dphi.shape == a.shape
    np.testing.assert_array_equal(value, act(a))
    np.testing.assert_array_equal(dphi, act.derivative(a))


@pytest.mark.parametrize("name", list(gl.ACTIVATIONS))
def test_gamma_is_sup_of_derivative_on_a_dense_grid(name):
    """γ_h = sup|φ'| measured with finite differences of φ itself, not with φ'."""
    act = gl.get_activation(name)
    a = np.linspace(-20, 20, 400_001)  # step 1e-4, contains a = 0 where tanh' and σ' peak
    slope = np.abs(central_difference(act, a, 1e-6))
    assert act.gamma == GAMMA[name]
    assert slope.max() == pytest.approx(GAMMA[name], rel=1e-8)
    assert np.all(slope <= act.gamma * (1 + 1e-8))
    assert np.all(np.abs(act.derivative(a)) <= act.gamma)


def test_sigmoid_does_not_overflow_for_large_negative_inputs():
    # 1 / (1 + exp(1000)) overflows in a naive implementation (an error in this suite).
    value, dphi = gl.get_activation("sigmoid").value_and_derivative(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(value, [0.0, 1.0])
    np.testing.assert_array_equal(dphi, [0.0, 0.0])


def test_relu_derivative_is_zero_at_and_below_the_kink():
    dphi = gl.get_activation("relu").derivative(np.array([-1.0, 0.0, 1e-300, 2.0]))
    np.testing.assert_array_equal(dphi, [0.0, 0.0, 1.0, 1.0])


def test_linear_value_is_a_copy():
    a = np.ones(3)
    gl.get_activation("linear")(a)[0] = 5.0
    assert a[0] == 1.0


def test_unknown_activation_names_the_value():
    with pytest.raises(gl.GradlabError, match=r"unknown activation 'softsign'.*tanh"):
        gl.get_activation("softsign")


def test_activation_object_passes_through():
    act = gl.ACTIVATIONS["tanh"]
    assert gl.get_activation(act) is act
