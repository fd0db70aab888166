"""A researcher's own PyTorch model in gradlab: live modules in (every kind, stacked, batch_first, no bias),
state-dict files, and the training monitor. The independent reference is torch.func.jacrev in float64."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import gradlab as gl


def modules(torch):
    torch.manual_seed(0)
    f64 = dict(dtype=torch.float64)
    return {
        "rnn-tanh": torch.nn.RNN(3, 5, num_layers=2, batch_first=True, **f64),
        "rnn-relu-tbd": torch.nn.RNN(3, 5, nonlinearity="relu", **f64),
        "lstm-2": torch.nn.LSTM(3, 5, num_layers=2, batch_first=True, **f64),
        "gru-nobias": torch.nn.GRU(3, 5, bias=False, batch_first=True, **f64),
        "grucell": torch.nn.GRUCell(3, 5, **f64),
        "lstmcell": torch.nn.LSTMCell(3, 5, **f64),
    }


def torch_states(torch, module, x):
    """The module's full state s_t (every layer; h and C for an LSTM) at every step, (B, T + 1, s)."""
    kind = type(module).__name__
    B, T = x.shape[0], x.shape[1]
    if kind.endswith("Cell"):
        n = module.hidden_size
        h = torch.zeros(B, n, dtype=torch.float64)
        c = torch.zeros(B, n, dtype=torch.float64)
        out = [torch.cat([h, c], 1) if kind == "LSTMCell" else h]
        for t in range(T):
            if kind == "LSTMCell":
                h, c = module(x[:, t], (h, c))
                out.append(torch.cat([h, c], 1))
            else:
                h = module(x[:, t], h)
                out.append(h)
        return torch.stack(out, 1)
    return None


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-relu-tbd", "lstm-2", "gru-nobias", "grucell", "lstmcell"])
def test_from_torch_reproduces_the_module(torch, name):
    module = modules(torch)[name]
    net = gl.from_torch(module)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 3))
    trace = net.cell.forward(net.params, x)
    X = torch.tensor(x if net.batch_first else x.swapaxes(0, 1))
    kind = type(module).__name__
    if kind.endswith("Cell"):
        np.testing.assert_allclose(trace.states(), torch_states(torch, module, X).detach().numpy(), atol=1e-13)
    else:
        out, _ = module(X)
        out = out.detach().numpy()
        np.testing.assert_allclose(trace.h[:, 1:], out if net.batch_first else out.swapaxes(0, 1), atol=1e-13)
    assert net.readout == "random"


def test_the_norms_of_a_trained_module_equal_jacrev_for_every_pair(torch):
    """Trained a few hundred steps in torch (adding problem), then analysed: every ‖∂s_t/∂s_k‖ against
    torch.func.jacrev of the unrolled module, 1e-9 relative."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(2, 6, num_layers=2, batch_first=True, dtype=torch.float64)
    fc = torch.nn.Linear(6, 1, dtype=torch.float64)
    opt = torch.optim.Adam([*lstm.parameters(), *fc.parameters()], lr=0.01)
    task, rng = gl.get_task("adding"), np.random.default_rng(0)
    for _ in range(200):
        b = task.batch(16, 12, rng)
        out, _ = lstm(torch.tensor(b.x))
        loss = ((fc(out[:, -1]) - torch.tensor(b.y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = task.batch(1, 12, rng).x
    result = gl.analyse(gl.from_torch(lstm, fc), x, pairs="all")
    norms = result.tables["norms"]
    assert len(norms) == 12 * 13 // 2

    n, L, X = 6, 2, torch.tensor(x[0])

    def run_from(k, s_k):   # s_t for t > k as a function of s_k (layers' (h, C) stacked like gradlab's state)
        hs = [(s_k[2 * n * l:2 * n * l + n], s_k[2 * n * l + n:2 * n * (l + 1)]) for l in range(L)]
        states = []
        for t in range(k, 12):
            inp, new = X[t], []
            for l in range(L):
                w = lambda a: getattr(lstm, f"{a}_l{l}")   # noqa: E731
                h, c = hs[l]
                g = w("weight_ih") @ inp + w("bias_ih") + w("weight_hh") @ h + w("bias_hh")
                i, f, gg, o = g[:n].sigmoid(), g[n:2 * n].sigmoid(), g[2 * n:3 * n].tanh(), g[3 * n:].sigmoid()
                c = f * c + i * gg
                h = o * c.tanh()
                new.append((h, c))
                inp = h
            hs = new
            states.append(torch.cat([torch.cat(p) for p in hs]))
        return states

    s = torch.tensor(result.trace.states()[0])
    worst = 0.0
    for row in norms.itertuples():
        J = torch.func.jacrev(lambda s_k, k=int(row.k), t=int(row.t): run_from(k, s_k)[t - k - 1])(s[int(row.k)])
        exact = np.linalg.norm(J.detach().numpy(), 2)
        worst = max(worst, abs(10 ** row.log10_norm / exact - 1))
    assert worst < 1e-9


def test_bad_modules_and_probes_are_one_line_errors(torch, tmp_path):
    with pytest.raises(gl.GradlabError, match=r"bidirectional=True\) is not supported"):
        gl.from_torch(torch.nn.GRU(3, 4, bidirectional=True))
    with pytest.raises(gl.GradlabError, match=r"proj_size=2\) is not supported"):
        gl.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(gl.GradlabError, match="unsupported module Linear"):
        gl.from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(gl.GradlabError, match="readout takes inputs of size 7"):
        gl.from_torch(torch.nn.GRU(3, 4), torch.nn.Linear(7, 1))
    with pytest.raises(gl.GradlabError, match=r"inputs must have shape .*\(B, T, 3\)"):
        gl.torch.Monitor(torch.nn.GRU(3, 4, batch_first=True), probe=torch.zeros(2, 5, 4), out=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_state_dict_files_are_read_with_weights_only(torch, tmp_path, capsys):
    from gradlab.cli import main

    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4, num_layers=2, dtype=torch.float64)
    torch.save(gru.state_dict(), tmp_path / "gru.pt")
    arrays = gl.torch.read_state_dict(tmp_path / "gru.pt")
    assert set(arrays) == set(gru.state_dict()) and arrays["weight_hh_l1"].dtype == np.float64
    torch.save(gru, tmp_path / "module.pt")                                  # a pickled module, not a state dict
    with pytest.raises(gl.GradlabError, match="weights_only=True"):
        gl.torch.read_state_dict(tmp_path / "module.pt")
    with pytest.raises(SystemExit) as e:
        main(["run", "--cell", "gru", "--weights", str(tmp_path / "gru.pt"), "--steps", "6", "--out",
              str(tmp_path / "run")])
    assert e.value.code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["layers"] == 2 and manifest["config"]["hidden"] == 4


def test_the_monitor_records_the_users_own_loop(torch, tmp_path):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(2, 8, num_layers=2, batch_first=True, dtype=torch.float64)
    fc = torch.nn.Linear(8, 1, dtype=torch.float64)
    opt = torch.optim.SGD([*lstm.parameters(), *fc.parameters()], lr=0.05)
    task, rng = gl.get_task("adding"), np.random.default_rng(0)
    probe = torch.tensor(task.batch(2, 10, rng).x)
    with gl.torch.Monitor(lstm, probe=probe, out=tmp_path / "mon", every=5, readout=fc) as monitor:
        for _ in range(12):
            b = task.batch(8, 10, rng)
            out, _ = lstm(torch.tensor(b.x))
            loss = ((fc(out[:, -1]) - torch.tensor(b.y)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            monitor.step(loss)
            grad = torch.sqrt(sum((p.grad ** 2).sum() for p in [*lstm.parameters(), *fc.parameters()]))
            opt.step()
    training = gl.schema.read_table(tmp_path / "mon" / "training.csv", "training")
    assert training["step"].tolist() == list(range(1, 13))
    assert training["grad_norm"].iloc[-1] == pytest.approx(float(grad), rel=1e-12)
    assert {"rho_W_hi_l0", "sigma_max_W_ho_l1"} <= set(training.columns)
    jac = gl.schema.read_table(tmp_path / "mon" / "jacobians.csv", "jacobians")
    assert sorted(set(jac["step"])) == [0, 5, 10, 12] and set(jac["lag"]) == set(range(1, 11))
    # the curve at the last step is what gradlab run measures for these weights on the probe
    direct = gl.analyse(gl.from_torch(lstm, fc), probe).tables["norms"].groupby("lag")["log10_norm"].mean()
    last = jac[jac["step"] == 12].set_index("lag")["mean_log10_norm"]
    np.testing.assert_allclose(last.to_numpy(), direct.to_numpy(), rtol=1e-12)
    manifest = json.loads((tmp_path / "mon" / "manifest.json").read_text())
    assert manifest["monitor"] == {"updates": 12, "finished": True}
    assert "12 rows" in gl.inspect_path(tmp_path / "mon") or "training.csv" in gl.inspect_path(tmp_path / "mon")
    assert pd.read_csv(tmp_path / "mon" / "runs.csv")["updates_done"].item() == 12


UNGUARDED_SCRIPT = """
import numpy as np, torch
import gradlab as gl
print("script body ran", flush=True)
torch.manual_seed(0)
rnn = torch.nn.RNN(2, 4, batch_first=True, dtype=torch.float64)
task, rng = gl.get_task("adding"), np.random.default_rng(0)
with gl.torch.Monitor(rnn, probe=torch.tensor(task.batch(2, 6, rng).x), out={out!r}, every=2) as monitor:
    for _ in range(3):
        out, _ = rnn(torch.tensor(task.batch(4, 6, rng).x))
        loss = out[:, -1].pow(2).mean()
        loss.backward()
        monitor.step(loss)
"""


def test_the_monitor_works_from_a_script_without_a_main_guard(torch, tmp_path):
    """The measuring process is spawned: it must not run the user's script again (most training scripts
    have no `if __name__ == "__main__":`), nor fail for it."""
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(UNGUARDED_SCRIPT.format(out=str(tmp_path / "mon")))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("script body ran") == 1
    assert json.loads((tmp_path / "mon" / "manifest.json").read_text())["monitor"] == {"updates": 3,
                                                                                      "finished": True}


def test_the_analysis_of_a_live_module_is_written_like_a_run(torch, tmp_path):
    import json

    gru = torch.nn.GRU(3, 4, dtype=torch.float64)
    result = gl.analyse(gl.from_torch(gru), np.zeros((6, 2, 3)))          # (T, B, d): batch_first=False
    assert result.model.config.steps == 6 and result.model.config.batch == 2
    gl.write_run(result, tmp_path / "run")
    model = json.loads((tmp_path / "run" / "manifest.json").read_text())["model"]
    assert model["network"].startswith("GRU(3, 4)") and model["readout"].startswith("random")
