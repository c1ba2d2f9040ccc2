import json
import math

import pytest

from hostage.io.write import atomic_path, atomic_write_json, atomic_write_text, study_key


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write_json(p, {"x": 1.5, "nan": math.nan})
    atomic_write_json(p, {"x": 2.0})
    assert json.loads(p.read_text()) == {"x": 2.0}
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.json"]


def test_nan_written_as_null(tmp_path):
    p = atomic_write_json(tmp_path / "a.json", {"v": [1.0, math.nan, math.inf]})
    assert json.loads(p.read_text()) == {"v": [1.0, None, None]}


def test_failed_write_leaves_old_file(tmp_path):
    p = tmp_path / "r.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["r.txt"]


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        ("1.2.840.10008.1", "1.2.840.10008.1"),
        ("../../etc/passwd", "etc_passwd"),
        ("a b/c\\d", "a_b_c_d"),
        ("", "study"),
        ("...", "study"),
    ],
)
def test_study_key_is_filesystem_safe(ident, expected):
    key = study_key(ident)
    assert key == expected
    assert all(c.isalnum() or c in "._-" for c in key)


def test_written_files_follow_the_umask_not_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        from hostage.io.write import _umask

        _umask.cache_clear()
        p = atomic_write_text(tmp_path / "x.txt", "hi")
    finally:
        os.umask(old)
        _umask.cache_clear()
    assert p.stat().st_mode & 0o777 == 0o644
