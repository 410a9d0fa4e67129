"""safe_pickle: plain data and numeric arrays load; anything that could run code is refused."""
import os
import pickle

import numpy
import pytest

from minigrad.data import DatasetFormatError, UnsafePickleError, load_pickle
from test_data_formats import cifar_batch, py2_pickle


class _RunsShell:
    """Pickles into 'call os.system(command)' on load: the classic pickle exploit."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _CallsEval:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


def test_python2_batch_loads_with_bytes_keys(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_pickle(cifar_batch(2, seed=0)))
    loaded = load_pickle(path)
    assert set(loaded) == {b"data", b"labels", b"batch_label", b"filenames"}
    assert loaded[b"data"].dtype == numpy.uint8 and loaded[b"data"].shape == (2, 3072)


def test_numpy2_array_pickle_loads(tmp_path):
    path = tmp_path / "modern"
    array = numpy.arange(12, dtype=numpy.uint8).reshape(3, 4)
    path.write_bytes(pickle.dumps({"data": array}, protocol=3))
    numpy.testing.assert_array_equal(load_pickle(path)["data"], array)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_os_system_pickle_is_refused_and_not_executed(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _RunsShell(f"touch {marker}")}, protocol=protocol))
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path)
    message = str(info.value)
    assert str(path) in message, "the error must name the file"
    assert "system" in message, "the error must name the refused global"
    assert not marker.exists(), "os.system ran during loading"


def test_eval_pickle_is_refused(tmp_path):
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps(_CallsEval(), protocol=2))
    with pytest.raises(UnsafePickleError, match=r"builtin.*\.eval"):  # '__builtin__' under protocol 2
        load_pickle(path)


def test_object_dtype_array_is_refused(tmp_path):
    path = tmp_path / "objects"
    path.write_bytes(pickle.dumps(numpy.array([1, "a"], dtype=object), protocol=3))
    with pytest.raises(UnsafePickleError, match="dtype"):
        load_pickle(path)


def test_arbitrary_class_instance_is_refused(tmp_path):
    path = tmp_path / "instance"
    path.write_bytes(pickle.dumps(DatasetFormatError("x"), protocol=2))
    with pytest.raises(UnsafePickleError, match="refusing to load global"):
        load_pickle(path)


def test_truncated_pickle_is_a_format_error_naming_the_file(tmp_path):
    path = tmp_path / "data_batch_2"
    path.write_bytes(py2_pickle(cifar_batch(2, seed=0))[:100])
    with pytest.raises(DatasetFormatError, match="data_batch_2"):
        load_pickle(path)


def test_a_batch_pickled_by_python3_with_protocol_2_loads(tmp_path):
    """Protocol 2 rebuilds every bytes object with _codecs.encode(text, 'latin1'): allowed, and only that."""
    images = numpy.arange(2 * 3072, dtype=numpy.uint8).reshape(2, 3072)
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [3, 7], b"data": images,
             b"filenames": [b"a.png", b"b.png"]}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    assert b"c_codecs\nencode" in path.read_bytes()
    loaded = load_pickle(path)
    numpy.testing.assert_array_equal(loaded[b"data"], images)
    assert loaded[b"labels"] == [3, 7] and loaded[b"batch_label"] == b"training batch 1 of 5"


@pytest.mark.parametrize("arguments", [("x", "rot13"), (b"x", "latin1"), ("x", "utf-16")])
def test_codecs_encode_is_allowed_only_to_rebuild_bytes_from_latin1(tmp_path, arguments):
    class CallsEncode:
        def __reduce__(self):
            import _codecs
            return _codecs.encode, arguments

    path = tmp_path / "bad"
    path.write_bytes(pickle.dumps({b"data": CallsEncode()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="only encode\\(text, 'latin1'\\)"):
        load_pickle(path)
