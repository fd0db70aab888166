"""Hostile numpy files: every one is one line naming the file, before numpy allocates what it claims (issue 15.3)."""
import io
import pickle
import re
import zipfile

import numpy as np
import pytest

import gradlab.io.files as files
from gradlab.errors import GradlabError


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def header_bytes(shape, descr="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def write_zip(path, members: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)


GOOD = {"weight_ih_l0": np.ones((3, 2)), "weight_hh_l0": 0.5 * np.eye(3)}


def test_headers_are_read_without_the_data(tmp_path):
    np.savez(tmp_path / "w.npz", nonlinearity="relu", **GOOD)
    contents = files.npz_contents(tmp_path / "w.npz")
    assert contents.headers["weight_hh_l0"].shape == (3, 3) and contents.headers["weight_hh_l0"].nbytes == 72
    assert contents.headers["nonlinearity"].dtype.kind == "U" and contents.other == ()
    assert files.read_npz_text(tmp_path / "w.npz", "nonlinearity") == "relu"
    arrays = files.read_npz_arrays(tmp_path / "w.npz", ["weight_hh_l0"])
    np.testing.assert_array_equal(arrays["weight_hh_l0"], GOOD["weight_hh_l0"])


def test_duplicate_zip_members_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(path, [("weight_hh_l0.npy", npy_bytes(np.eye(2))), ("weight_hh_l0.npy", npy_bytes(2 * np.eye(2)))])
    with pytest.raises(GradlabError, match=r"dup\.npz' holds weight_hh_l0\.npy twice \(duplicate zip members\)"):
        files.npz_contents(path)


def test_a_member_that_is_not_an_array_is_listed_not_read(tmp_path):
    write_zip(tmp_path / "w.npz", [("weight_hh_l0.npy", npy_bytes(np.eye(2))), ("README.txt", b"hello")])
    assert files.npz_contents(tmp_path / "w.npz").other == ("README.txt",)


@pytest.mark.parametrize("where", ["npz", "npy"])
def test_a_header_claiming_more_data_than_the_file_holds_is_refused_before_allocating(tmp_path, where):
    """Shape (10⁶, 10⁶): numpy would try to allocate 7.3 TiB (MemoryError) for a 200-byte file."""
    data = header_bytes((10 ** 6, 10 ** 6)) + bytes(64)
    if where == "npz":
        write_zip(tmp_path / "w.npz", [("weight_hh_l0.npy", data)])
        call = lambda: files.npz_contents(tmp_path / "w.npz")      # noqa: E731
    else:
        (tmp_path / "x.npy").write_bytes(data)
        call = lambda: files.load_inputs(tmp_path / "x.npy")       # noqa: E731
    with pytest.raises(GradlabError, match=r"claims shape \(1000000, 1000000\) of float64 \(7\.28 TiB\) but holds "
                                           r"only 64 bytes"):
        call()


def test_a_zip_bomb_is_bounded_from_its_headers_before_it_is_inflated(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("weight_hh_l0.npy", header_bytes((1 << 20,)) + bytes(8 << 20))    # 8 MiB of zeros, ~8 kB
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: pytest.fail("inflated"))
    with pytest.raises(GradlabError, match=r"bomb\.npz' would take 8 MiB of memory uncompressed, more than the "
                                           r"1 MiB available"):
        files.read_npz_arrays(path, ["weight_hh_l0"], max_bytes=1 << 20)


WEIGHT_DTYPES = {
    "datetime64": (np.arange(4).astype("datetime64[s]"), r"holds datetime64\[s\] values, not real floating-point"),
    "timedelta64": (np.arange(4).astype("timedelta64[s]"), r"holds timedelta64\[s\] values"),
    "bool": (np.ones(4, dtype=bool), r"holds bool values"),
    "int": (np.arange(4), r"holds int64 values"),
    "structured": (np.zeros(4, dtype=[("a", "f8"), ("b", "f8")]), r"holds \[\('a', '<f8'\), \('b', '<f8'\)\] values"),
    "text": (np.array(["a", "b"]), r"holds <U1 values"),
    "complex": (np.ones(4) + 1j, r"holds complex numbers \(complex128\), expected real ones"),
}


@pytest.mark.parametrize("case", list(WEIGHT_DTYPES))
def test_weights_must_be_real_floating_point_never_cast(tmp_path, case):
    value, message = WEIGHT_DTYPES[case]
    np.savez(tmp_path / "w.npz", weight_hh_l0=value)
    with pytest.raises(GradlabError, match=message) as info:
        files.read_arrays(tmp_path / "w.npz")
    assert "w.npz" in str(info.value) and "weight_hh_l0" in str(info.value)


def test_object_arrays_are_refused_as_pickles(tmp_path):
    np.savez(tmp_path / "w.npz", weight_hh_l0=np.array([{"a": 1}], dtype=object))
    with pytest.raises(GradlabError, match=r"cannot read weights file .*Python objects \(a pickle\)"):
        files.read_arrays(tmp_path / "w.npz")


@pytest.mark.parametrize("value", [np.arange(4).astype("datetime64[D]"), np.arange(4).astype("timedelta64[s]"),
                                   np.ones(4, dtype=bool), np.ones(4) + 1j, np.zeros(4, dtype=[("a", "f8")])])
def test_inputs_are_floats_or_integer_token_ids_only(tmp_path, value):
    """timedelta64 is an integer subtype in numpy's hierarchy: it passed as token ids."""
    np.save(tmp_path / "x.npy", value)
    with pytest.raises(GradlabError, match=rf"holds {re.escape(str(value.dtype))}, expected floats or integer token"):
        files.load_inputs(tmp_path / "x.npy")


@pytest.mark.parametrize("value", [np.zeros((3, 2), dtype=np.float16), np.arange(5, dtype=np.uint8)])
def test_other_floats_and_integers_are_inputs(tmp_path, value):
    np.save(tmp_path / "x.npy", value)
    np.testing.assert_array_equal(files.load_inputs(tmp_path / "x.npy"), value)


def test_an_input_file_beyond_max_bytes_is_refused_from_its_header(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((100, 3)))
    with pytest.raises(GradlabError, match=r"x\.npy' would take 2\.34 KiB of memory"):
        files.load_inputs(tmp_path / "x.npy", max_bytes=1000)


@pytest.mark.parametrize("role, reader", [("weights", files.npz_contents), ("input", files.load_inputs)])
def test_torch_save_files_say_what_they_are_and_how_to_convert(tmp_path, role, reader):
    write_zip(tmp_path / "new.pt", [("archive/data.pkl", pickle.dumps({"w": 1})), ("archive/version", b"3\n")])
    (tmp_path / "old.pt").write_bytes(pickle.dumps({"w": [1.0]}, protocol=2))
    for name in ("new.pt", "old.pt"):
        if role == "input" and name == "new.pt":
            continue        # a zip where a .npy belongs: "not a .npy file"
        with pytest.raises(GradlabError) as info:
            reader(tmp_path / name)
        message = str(info.value)
        assert f"{name}' is a PyTorch file (torch.save)" in message and "v.numpy()" in message
        assert "\n" not in message and "\\x80" not in message


def test_real_torch_save_file(tmp_path, torch):
    torch.save(torch.nn.RNN(2, 3).state_dict(), tmp_path / "rnn.pt")
    with pytest.raises(GradlabError, match=r"rnn\.pt' is a PyTorch file \(torch\.save\)"):
        files.npz_contents(tmp_path / "rnn.pt")


@pytest.mark.parametrize("value, message", [(np.array(5), r"got a number of int64"),
                                            (np.array(["relu", "tanh"]), r"got an array of shape \(2,\)")])
def test_a_text_entry_must_be_one_string(tmp_path, value, message):
    np.savez(tmp_path / "w.npz", nonlinearity=value)
    with pytest.raises(GradlabError, match=r"nonlinearity must be one string, e\.g\. .*" + message):
        files.read_npz_text(tmp_path / "w.npz", "nonlinearity")


def test_format_bytes():
    assert files.format_bytes(0) == "0 bytes" and files.format_bytes(2048) == "2 KiB"
    assert files.format_bytes(8 * 10 ** 12) == "7.28 TiB" and files.format_bytes(10 ** 400).endswith("EiB")

