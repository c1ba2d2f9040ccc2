from pathlib import Path

import pytest

from hostage.config import Config, load_config, render_toml
from hostage.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_toml_equals_dataclass_defaults():
    assert load_config(ROOT / "configs" / "default.toml") == Config()


def test_default_toml_is_the_rendered_documentation():
    text = (ROOT / "configs" / "default.toml").read_text(encoding="utf-8")
    assert text == render_toml(), "regenerate: python -m hostage.config > configs/default.toml"


def test_subset_override_keeps_other_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[segment]\nmin_focus_volume_mm3 = 55\n")
    cfg = load_config(path)
    assert cfg.segment.min_focus_volume_mm3 == 55.0
    assert cfg.segment.group_distance_mm == Config().segment.group_distance_mm
    assert cfg.load == Config().load


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[segmnt]\nx = 1\n", r"unknown table \[segmnt\].*did you mean 'segment'"),
        (
            "[segment]\nmin_focus_volume_mm = 1\n",
            r"unknown key 'min_focus_volume_mm'.*did you mean",
        ),
        (
            "[segment]\nmin_focus_volume_mm3 = 'big'\n",
            r"\[segment\] min_focus_volume_mm3 must be a number",
        ),
        ("[segment]\nmin_focus_volume_mm3 = -1\n", r"out of range; it must be >= 0"),
        ("[load]\nallow_gantry_tilt = 1\n", r"must be true or false"),
        ("[load]\nmax_voxels = 1.5\n", r"must be an integer"),
        ("[batch]\noutputs = 'json'\n", r"must be a list of strings"),
        ("[segment\n", r"not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")


def test_config_round_trips_through_its_dict():
    cfg = Config()
    assert Config.from_dict(cfg.to_dict()) == cfg
