"""``hostage stage``: command-line and config errors exit 2 and write nothing."""

import re

import pytest

from hostage.cli import main


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "[classify]\nrim_form = 0.3\n",
            r"unknown key 'rim_form' in \[classify\] \(did you mean 'rim_from'\?\)",
        ),
        (
            "[classify]\nweight_rim_mature = 'high'\n",
            r"\[classify\] weight_rim_mature must be a number",
        ),
        (
            "[classify]\nmin_confidence = 1.5\n",
            r"\[classify\] min_confidence = 1.5 is out of range; it must be <= 1",
        ),
        (
            "[classify]\nstability_checks = 1\n",
            r"\[classify\] stability_checks must be true or false",
        ),
        ("[clasify]\n", r"unknown table \[clasify\] \(did you mean 'classify'\?\)"),
    ],
)
def test_bad_config_exits_2_and_writes_nothing(tmp_path, capsys, text, match):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    assert main(["stage", str(tmp_path), "--out", str(out), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert str(cfg) in err

    assert re.search(match, err)
    assert not out.exists()


def test_unknown_output_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["stage", str(tmp_path), "--out", str(out), "--outputs", "json,htm"]) == 2
    assert "unknown output 'htm' (did you mean 'html'?)" in capsys.readouterr().err
    assert not out.exists()


def test_missing_out_is_a_usage_error(tmp_path, capsys):
    assert main(["stage", str(tmp_path)]) == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_bad_prior_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    prior = tmp_path / "prior.json"
    prior.write_text('{"schema": "something/else"}')
    assert main(["stage", str(tmp_path), "--out", str(out), "--prior", str(prior)]) == 2
    assert "bad --prior" in capsys.readouterr().err
    assert not out.exists()
    assert main(["stage", str(tmp_path), "--out", str(out), "--prior", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
