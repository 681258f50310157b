"""Settings: ``GUARD_*`` environment variables, then an optional TOML file, then defaults.

The TOML file is ``$GUARD_CONFIG_FILE`` or ``./guard.toml`` when present; keys are the field names
below without the prefix (``data_dir = "/srv/guard"``). Environment variables win over the file.

    >>> from guard.config import Settings
    >>> Settings(data_dir="/tmp/g").database_url
    'sqlite:////tmp/g/guard.db'
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from guard.config_service import ServiceSettings
from guard.devices import DeviceSetting
from guard.errors import ConfigurationError


def shipped_folder(package: str) -> Path:
    """The folder of a data package that ships inside the wheel: ``guard.policies`` (``policies/``
    in the source tree) or ``guard.migrations`` (``migrations/``); pyproject.toml maps them."""
    folder = files(package)
    if not isinstance(folder, Path):  # a zipped install: Alembic and the policy reloader need files
        raise ConfigurationError(f"{package} must be installed as files on disk, not {folder}")
    return folder


POLICIES_DIR = shipped_folder("guard.policies")
SHIPPED_POLICIES = tuple(sorted(path.stem for path in POLICIES_DIR.glob("*.yaml")))
DEFAULT_POLICY_FILE = POLICIES_DIR / "default.yaml"


def _config_file() -> Path | None:
    named = os.environ.get("GUARD_CONFIG_FILE")
    if named:
        return Path(named)
    local = Path("guard.toml")
    return local if local.is_file() else None


class Settings(BaseSettings, ServiceSettings):
    """Every knob of the guard. Thresholds are per face engine and documented in the README."""

    model_config = SettingsConfigDict(env_prefix="GUARD_", extra="forbid")

    data_dir: Path = Field(
        default=Path("var"), description="Where the database, keys and indexes live."
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at <data_dir>/guard.db.",
    )
    device: DeviceSetting = "auto"
    faiss_threads: int = Field(default=1, ge=1, le=256)
    # NumPy's OpenBLAS threads (process-wide), used by the face descriptor's matrix products.
    # One per call: requests run side by side, and on 2 busy cores two threads per product made
    # a descriptor 2-5x slower and erratic (docs/benchmarks.md, issue 18).
    blas_threads: int = Field(default=1, ge=1, le=256)

    face_engine: Literal["dlib", "arcface"] = "dlib"
    dlib_detector: Literal["hog", "cnn"] = "hog"
    dlib_upsample: int = Field(default=1, ge=0, le=3)
    # HOG scores measured here (docs/thresholds.md): the faintest real face in t1.jpg scores 0.30
    # after JPEG 50, the false positive on the astronaut's suit at most 0.13. A missed face escapes
    # the gate, a false one only adds an "unknown" denial, so the cut leans low.
    dlib_min_detection_score: float = 0.2
    # Extra detection passes on copies turned by these angles (degrees): HOG misses faces tilted
    # by more than ~15°. Each angle costs one more detection pass; () turns the sweep off.
    dlib_rotation_sweep: tuple[float, ...] = (-30.0, 30.0)
    # Where the turned copies are searched at the working size: "steered", only around faces
    # NudeNet saw that the upright search missed, plus the whole image at 480 px for large faces
    # (issue 18: 3-4x cheaper; small turned faces NudeNet cannot see are lost,
    # docs/benchmarks.md); "everywhere", the whole image, whatever it costs. Without NudeNet
    # (GUARD_NSFW_CLASSIFIER=none) the search is everywhere either way.
    dlib_turned_views: Literal["steered", "everywhere"] = "steered"
    # Cosine similarities of L2-normalised dlib descriptors (docs/thresholds.md: same person after
    # re-encoding >= 0.974, two different people <= 0.916 here). The two errors cost differently:
    # a false registry match lets a stranger borrow someone's consent (allow), so that threshold
    # is strict; a false blocklist match only denies, so that one is more sensitive.
    dlib_registry_threshold: float = Field(default=0.95, gt=0.0, lt=1.0)
    dlib_blocklist_threshold: float = Field(default=0.93, gt=0.0, lt=1.0)
    dlib_drift_threshold: float = Field(default=0.93, gt=0.0, lt=1.0)
    # How far under the blocklist threshold a face still counts as a "near miss" of a public
    # figure: usage monitoring flags keys that collect many distinct near misses (probing).
    dlib_near_miss_margin: float = Field(default=0.03, ge=0.0, lt=1.0)
    # An enrolled template stands for a consenting person from then on, so enrollment asks more
    # of a face than detection does: the real faces in t1.jpg score 0.65-2.8, one degraded to
    # JPEG 50 scores 0.30 (docs/thresholds.md).
    dlib_enroll_min_detection_score: float = Field(default=0.5, ge=0.0)
    insightface_model_dir: Path | None = Field(
        default=None,
        description="Directory holding an SCRFD detector and an ArcFace recogniser (*.onnx).",
    )
    arcface_det_size: int = 640
    arcface_min_detection_score: float = 0.5
    arcface_registry_threshold: float = Field(default=0.45, gt=0.0, lt=1.0)
    arcface_blocklist_threshold: float = Field(default=0.40, gt=0.0, lt=1.0)
    arcface_drift_threshold: float = Field(default=0.40, gt=0.0, lt=1.0)
    arcface_near_miss_margin: float = Field(default=0.08, ge=0.0, lt=1.0)
    arcface_enroll_min_detection_score: float = Field(default=0.7, ge=0.0, le=1.0)
    # The smallest face (shorter side of its box, in pixels) enrollment accepts: both engines
    # embed a face from an aligned crop of 112-150 pixels, and a face much smaller than that is
    # upscaled guesswork. The test photos' faces measure 86-129 pixels.
    enroll_min_face_pixels: int = Field(default=80, ge=1)

    template_key: SecretStr | None = Field(
        default=None,
        description="Fernet key for face templates at rest; default <data_dir>/keys/template.key.",
    )
    hmac_key: SecretStr | None = Field(
        default=None,
        description="Key for pseudonymous references in logs; default <data_dir>/keys/hmac.key.",
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="The audit log's Ed25519 checkpoint key itself (PEM, what the key file "
        "holds); default <data_dir>/keys/audit/checkpoint-key.pem.",
    )
    key_provider: str | None = Field(
        default=None,
        description="package.module:function returning the bytes of each key whose own "
        "setting is unset, instead of its file (a KMS/HSM hook; docs/deploy.md, Keys).",
    )
    key_provider_ttl_s: float = Field(
        default=300.0,
        ge=0.0,
        description="How long a key the provider gave is used before "
        "it is asked again (a rotated key is picked up then).",
    )
    policy: str | None = Field(
        default=None,
        description="A shipped policy by name (default, newsroom, strict); instead of policy_file.",
    )
    policy_file: Path = DEFAULT_POLICY_FILE
    blocklist_dir: Path | None = Field(
        default=None,
        description="Where an earlier version kept the blocklist as files (default "
        "<data_dir>/blocklist): imported into the database once, while it holds none.",
    )
    blocklist_poll_s: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="How often (seconds) each process asks the database for a newer blocklist "
        "generation: another host's change is enforced here within this delay (0: every "
        "decision asks).",
    )
    blocklist_source_dir: Path | None = Field(
        default=None,
        description="Folder of <figure-id>/<photo> files that `POST /v1/blocklist/rebuild` "
        "rebuilds the blocklist from.",
    )

    c2pa_cert_chain: Path | None = Field(
        default=None,
        description="PEM chain, signer first; default <data_dir>/keys/c2pa/signing-chain.pem.",
    )
    c2pa_private_key: Path | None = Field(
        default=None,
        description="PEM EC P-256 key for C2PA; default <data_dir>/keys/c2pa/signing-key.pem.",
    )
    c2pa_cert_chain_pem: SecretStr | None = Field(
        default=None, description="The C2PA chain itself (PEM); wins over c2pa_cert_chain."
    )
    c2pa_private_key_pem: SecretStr | None = Field(
        default=None, description="The C2PA key itself (PEM); wins over c2pa_private_key."
    )
    c2pa_tsa_url: str | None = Field(
        default=None,
        description="RFC 3161 timestamp authority for C2PA signatures (none: offline).",
    )
    c2pa_trust_anchors: Path | None = Field(
        default=None,
        description="PEM CA certificates `verify` trusts (none: signatures valid but untrusted).",
    )
    # Thumbnails add ~250 KiB and most of the signing time (docs/benchmarks.md).
    c2pa_thumbnails: bool = False
    watermark_psnr_db: float = Field(default=41.0, ge=40.0, le=60.0)
    # pHash Hamming distance (of 64 bits) under which `verify` treats two images as the same one:
    # re-encodes and resizes land within ~4, unrelated photos around 32 (docs/benchmarks.md).
    fingerprint_max_distance: int = Field(default=8, ge=0, le=20)

    # The editor that makes the pixels (`guard edit --editor` overrides it per command).
    editor: Literal["classic", "diffusers"] = "classic"
    diffusers_model_dir: Path | None = Field(
        default=None,
        description="A diffusers pipeline saved on disk (model_index.json and its component "
        "folders): QwenImageEditPipeline, FluxKontextPipeline or "
        "StableDiffusionInstructPix2PixPipeline. Never downloaded.",
    )
    diffusers_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="auto: bfloat16 on CUDA, float32 on the CPU."
    )
    diffusers_cpu_offload: bool = Field(
        default=False, description="Keep idle components in CPU memory (CUDA only)."
    )
    diffusers_attention_slicing: bool = False
    diffusers_steps: int = Field(default=28, ge=1, le=500)
    diffusers_guidance: float | None = Field(
        default=None, ge=0.0, le=50.0, description="None: the pipeline class's own default."
    )
    diffusers_resolution: int = Field(
        default=1024,
        ge=64,
        le=4096,
        description="Long side the model works at; the output is resized back to the input's.",
    )
    diffusers_timeout_s: float = Field(default=900.0, gt=0.0)
    diffusers_protect_faces: bool = Field(
        default=True,
        description="Keep every allowed face region's pixels as they were (feathered edge).",
    )

    nsfw_classifier: Literal["nudenet", "none"] = Field(
        default="nudenet",
        description="NSFW screening of inputs and outputs; `none` switches it off explicitly.",
    )
    max_prompt_chars: int = Field(default=10_000, ge=1)
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    allow_multiframe: bool = False

    # The cost budget per request (docs/service.md, Cost budget): every cap below is checked
    # before the work it bounds, so no input within them can run a worker out of memory or
    # keep small requests waiting without end.
    max_image_aspect_ratio: float = Field(
        default=20.0,
        ge=1.0,
        description="Longest side over shortest side an image may have (read from the "
        "header); beyond it: 422 bad_aspect_ratio.",
    )
    max_decoded_image_bytes: int = Field(
        default=192 * 1024 * 1024,
        ge=1,
        description="Bytes one image may take decoded (width x height x bands x sample "
        "size, at least RGB), read from the header; beyond it: 413 image_too_large.",
    )
    # Slots and queue places each hold a worker thread (anyio's pool: 40, shared with the
    # probes and every plain route): together they stay well below it.
    api_max_concurrent_images: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Requests with images (checks, edits, stamps, verifies, enrollments, "
        "gateway checks and stamps) one worker works on at once.",
    )
    api_admission_queue: int = Field(
        default=4,
        ge=0,
        le=16,
        description="Image requests one worker lets wait for a slot; past that: 503 busy.",
    )
    api_large_image_pixels: int = Field(
        default=2_000_000,
        ge=1,
        description="A request whose images together declare more pixels than this is large: "
        "large requests hold at most all slots but one and half the queue, so small ones "
        "never wait behind them.",
    )
    api_admission_retry_after_s: float = Field(
        default=1.0, gt=0.0, description="The Retry-After a busy answer carries."
    )
    detect_max_side: int = Field(
        default=1280,
        ge=256,
        description="Long side faces and NSFW content are searched at; larger images are "
        "searched on a downscaled copy and each face is embedded from the full-resolution "
        "pixels.",
    )

    @model_validator(mode="after")
    def _shipped_policy(self) -> Settings:
        if self.policy is None:
            return self
        if "policy_file" in self.model_fields_set:
            raise ConfigurationError(
                f"GUARD_POLICY={self.policy} and GUARD_POLICY_FILE={self.policy_file} are both "
                "set; keep one: GUARD_POLICY names a shipped policy, GUARD_POLICY_FILE any file"
            )
        if self.policy not in SHIPPED_POLICIES:
            raise ConfigurationError(
                f"GUARD_POLICY={self.policy!r} is not a shipped policy; choose one of "
                f"{', '.join(SHIPPED_POLICIES)} or name a file with GUARD_POLICY_FILE"
            )
        self.policy_file = POLICIES_DIR / f"{self.policy}.yaml"
        return self

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir.resolve() / 'guard.db'}"
        if self.blocklist_dir is None:
            self.blocklist_dir = self.data_dir / "blocklist"
        if not self.api_max_body_bytes:
            self.api_max_body_bytes = 2 * self.max_image_bytes + 1024 * 1024
        return self

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def audit_keys_dir(self) -> Path:
        return self.keys_dir / "audit"

    @property
    def c2pa_keys_dir(self) -> Path:
        return self.keys_dir / "c2pa"

    @property
    def blocklist_path(self) -> Path:
        assert self.blocklist_dir is not None  # set by _derive_paths
        return self.blocklist_dir

    def registry_threshold(self, engine: str) -> float:
        return self.dlib_registry_threshold if engine == "dlib" else self.arcface_registry_threshold

    def enroll_min_detection_score(self, engine: str) -> float:
        if engine == "dlib":
            return self.dlib_enroll_min_detection_score
        return self.arcface_enroll_min_detection_score

    def blocklist_threshold(self, engine: str) -> float:
        if engine == "dlib":
            return self.dlib_blocklist_threshold
        return self.arcface_blocklist_threshold

    def drift_threshold(self, engine: str) -> float:
        return self.dlib_drift_threshold if engine == "dlib" else self.arcface_drift_threshold

    def near_miss_margin(self, engine: str) -> float:
        return self.dlib_near_miss_margin if engine == "dlib" else self.arcface_near_miss_margin

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)
