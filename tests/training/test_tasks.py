"""Long-memory tasks: structure decoded independently, and chance baselines statistically.

Statistical checks use N = 20 000 sequences and a tolerance of 5 standard errors.
"""
import re

import numpy as np
import pytest

from gradlab import GradlabError
from gradlab.training.tasks import (COPY_ALPHABET, COPY_LENGTH, REBER_SYMBOLS, TASKS, embedded_reber_string, get_task)

N = 20_000


def test_adding_problem_marks_one_value_in_each_half_and_sums_them():
    T = 30
    b = get_task("adding").batch(500, T, np.random.default_rng(0))
    values, marks = b.x[..., 0], b.x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert np.all(marks.sum(axis=1) == 2)
    assert np.all(marks[:, :T // 2].sum(axis=1) == 1)
    assert np.allclose(b.y[:, 0], (values * marks).sum(axis=1), rtol=0, atol=1e-15)


def test_adding_problem_always_predicting_one_scores_a_sixth():
    task = get_task("adding")
    b = task.batch(N, 20, np.random.default_rng(1))
    mse = task.metric(b, np.ones((N, 1, 1)))
    se = np.sqrt((1 / 15 - 1 / 36) / N)          # (U1 + U2 − 1)² has variance 1/15 − 1/36
    assert abs(mse - 1 / 6) < 5 * se
    assert task.chance == pytest.approx(1 / 6)


def test_temporal_order_places_two_relevant_symbols_and_labels_their_order():
    T = 50
    b = get_task("temporal_order").batch(1000, T, np.random.default_rng(2))
    for x, y in zip(b.x, b.y):
        pos = np.flatnonzero(x < 2)                      # A = 0, B = 1; distractors are 2 … 5
        assert len(pos) == 2
        assert T // 10 <= pos[0] < 2 * T // 10 and 4 * T // 10 <= pos[1] < 5 * T // 10
        assert y == 2 * x[pos[0]] + x[pos[1]]           # AA, AB, BA, BB


def test_temporal_order_chance_is_75_percent_error():
    task = get_task("temporal_order")
    b = task.batch(N, 20, np.random.default_rng(3))
    o = np.zeros((N, 1, 4))
    o[..., 2] = 1.0                                      # always answer "BA"
    se = np.sqrt(0.75 * 0.25 / N)
    assert abs(task.metric(b, o) - 0.75) < 5 * se


def test_copy_task_reproduces_the_data_after_the_delimiter():
    T, L, K = 25, COPY_LENGTH, COPY_ALPHABET
    task = get_task("copy")
    b = task.batch(200, T, np.random.default_rng(4))
    assert np.array_equal(b.y[:, T - L:], b.x[:, :L])
    assert np.all((b.x[:, :L] >= 1) & (b.x[:, :L] <= K))
    assert np.all(b.x[:, T - L - 1] == K + 1) and np.all(b.y[:, :T - L] == 0)
    perfect = np.eye(task.outputs)[b.y]                  # one-hot of the right answer
    assert task.metric(b, perfect) == 0.0
    guess = np.eye(task.outputs)[np.ones_like(b.y)]      # always symbol 1
    assert 0.8 < task.metric(b, guess) < 0.95            # 1 − 1/8 in expectation, 1000 symbols


# Reber's grammar as a regular expression, written from the state graph independently of the sampler.
INNER = r"B(?:(?:TS*X|PT*VP)(?:XT*VP)*(?:S|XT*VV)|PT*VV)E"
EMBEDDED = re.compile(rf"B(?:T{INNER}T|P{INNER}P)E")


def test_embedded_reber_strings_belong_to_the_grammar_and_the_legal_sets_hold():
    rng = np.random.default_rng(5)
    for _ in range(300):
        symbols, legal = embedded_reber_string(rng)
        text = "".join(REBER_SYMBOLS[s] for s in symbols)
        assert EMBEDDED.fullmatch(text), text
        assert len(legal) == len(symbols)
        assert all(nxt in allowed for nxt, allowed in zip(symbols[1:], legal))
        assert legal[-3] == {symbols[1]}                 # after the inner E: the long-range symbol
        wrong = text[:-2] + {"T": "P", "P": "T"}[text[-2]] + "E"
        assert not EMBEDDED.fullmatch(wrong)              # the regex does check the long-range symbol


# Reber's inner grammar as its state graph (Hochreiter & Schmidhuber 1997, fig. 3), by symbol letter.
REBER_GRAPH = {0: {"T": 1, "P": 2}, 1: {"S": 1, "X": 3}, 2: {"T": 2, "V": 4}, 3: {"X": 2, "S": 5},
               4: {"P": 3, "V": 5}, 5: {"E": None}}


def grammar_successors(text):
    """Every symbol the embedded grammar allows after each symbol of ``text``, walked on REBER_GRAPH."""
    sets, state = [{"T", "P"}, {"B"}], 0               # after the outer B; after c comes the inner B
    for symbol in text[3:-2]:                          # the inner string after its B, up to its E
        sets.append(set(REBER_GRAPH[state]))
        state = REBER_GRAPH[state][symbol]
    return sets + [{text[1]}, {"E"}, {"B"}]            # after the inner E: c again; then E; then a new string


def test_reber_legal_sets_are_exactly_the_grammars_successors():
    """Not just sound (every next symbol legal) but exact: a too-generous set would flatter the error metric."""
    rng = np.random.default_rng(8)
    for _ in range(500):
        symbols, legal = embedded_reber_string(rng)
        text = "".join(REBER_SYMBOLS[s] for s in symbols)
        assert [{REBER_SYMBOLS[s] for s in allowed} for allowed in legal] == grammar_successors(text), text


def test_reber_stream_targets_are_the_next_symbols_and_always_legal():
    b = get_task("reber").batch(20, 60, np.random.default_rng(6))
    assert np.array_equal(b.y[:, :-1], b.x[:, 1:])
    assert np.all(np.take_along_axis(b.legal, b.y[..., None], axis=-1))


def test_tasks_are_reproducible_from_the_generator():
    for name, task in TASKS.items():
        a = task.batch(4, 30, np.random.default_rng(7))
        b = task.batch(4, 30, np.random.default_rng(7))
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y), name


def test_unknown_task_and_too_short_sequences_are_refused():
    with pytest.raises(GradlabError, match="'adder'"):
        get_task("adder")
    with pytest.raises(GradlabError, match="steps ≥ 11, got 5"):
        get_task("copy").batch(2, 5, np.random.default_rng(0))


def flip_flop_reference(x):
    """The targets by walking each channel in time, holding the last nonzero input (independent of the sampler)."""
    y = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[2]):
            held = np.nan
            for t in range(x.shape[1]):
                if x[b, t, c] != 0:
                    held = x[b, t, c]
                y[b, t, c] = held
    return y


def test_flip_flop_outputs_hold_the_sign_of_each_channels_last_pulse():
    task = get_task("flip_flop")
    assert (task.inputs, task.outputs, task.loss, task.loss_steps, task.metric_name) == (3, 3, "mse", "all", "mse")
    b = task.batch(50, 80, np.random.default_rng(9))
    assert b.x.shape == b.y.shape == (50, 80, 3)
    assert set(np.unique(b.x)) == {-1.0, 0.0, 1.0} and set(np.unique(b.y)) == {-1.0, 1.0}
    assert np.all(b.x[:, 0] != 0)                        # every channel is set at the first step
    assert np.array_equal(b.y, flip_flop_reference(b.x))


def test_flip_flop_pulses_are_sparse_with_fair_signs():
    """After the first step a pulse has probability FLIP_FLOP_P per channel and step, its sign a fair coin (5 se)."""
    from gradlab.training.tasks import FLIP_FLOP_P

    b = get_task("flip_flop").batch(500, 41, np.random.default_rng(10))
    pulses = b.x[:, 1:] != 0
    count = pulses.size
    assert abs(pulses.mean() - FLIP_FLOP_P) < 5 * np.sqrt(FLIP_FLOP_P * (1 - FLIP_FLOP_P) / count)
    signs = b.x[:, 1:][pulses]
    assert abs(np.mean(signs > 0) - 0.5) < 5 * np.sqrt(0.25 / signs.size)
    first = b.x[:, 0]
    assert abs(np.mean(first > 0) - 0.5) < 5 * np.sqrt(0.25 / first.size)


def test_flip_flop_metric_is_the_mse_over_every_step_and_chance_is_one():
    """Targets are ±1 everywhere, so predicting 0 scores exactly 1 (= task.chance); o = y + 0.1 scores 0.01."""
    task = get_task("flip_flop")
    b = task.batch(20, 30, np.random.default_rng(11))
    assert task.chance == 1.0
    assert task.metric(b, np.zeros_like(b.y)) == 1.0
    assert task.metric(b, b.y) == 0.0
    assert task.metric(b, b.y + 0.1) == pytest.approx(0.01, rel=1e-12)
    o = b.y.copy()
    o[:, -1] = -o[:, -1]                                  # wrong on the last step only: (2²) · 1/30
    assert task.metric(b, o) == pytest.approx(4 / 30, rel=1e-12)
