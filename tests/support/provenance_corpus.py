"""Images for measuring fingerprint recovery (issue 17: no false provenance).

Two disjoint sets, built deterministically from photos the installed packages ship:

- :func:`stamped_images`: 50 images a tenant stamps — ten real photos, ten distinct crops of
  them, ten small real faces, and twenty low-information images (1x1 pixels, flat colours,
  gradients, a checkerboard, tiny random images, noise): the kind that made every flat picture
  "verify" before.
- :func:`never_stamped`: 1,000+ images that were never stamped — the other real photos (whole,
  distinct crops, and each under :data:`TRANSFORMS`), the other small faces and face-sized
  patches of scikit-image's LFW subset, and an adversarial set of flat colours, gradients,
  stripes, checkerboards, two-tone splits and tiny images in many colours and sizes.

:func:`stamped_variants` gives the stamped real photos under the same transforms: the copies a
fingerprint should still lead back to (recall). ``bench/provenance_false_recovery.py`` and
``tests/integration/test_false_provenance.py`` share this corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data

from guard.media import RGBImage, decode_image, encode_image
from guard.samples import natural_photos

Transform = Callable[[RGBImage], RGBImage]
Colour = tuple[int, int, int]

# The photos a tenant stamps; every other real photo is in the never-stamped set. The split
# keeps no picture on both sides (scikit-image's `cat` is `chelsea`, so only one is used).
STAMPED_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "t1",
    "coins",
    "moon",
    "brick",
    "mask_blue",
)
_EXTRA_PHOTOS = ("cell", "clock", "microaneurysms", "page", "text")
# Sources are first brought to this long side: transforms of a 1411² retina would dominate the
# run time, and a smaller copy is as much a real photo.
_MAX_SIDE = 512
_STAMPED_FACES = 10


@dataclass(frozen=True)
class Sample:
    group: str
    name: str
    rgb: RGBImage


def _grey3(pixels: np.ndarray) -> RGBImage:
    return np.ascontiguousarray(np.repeat(pixels[..., None], 3, axis=2).astype(np.uint8))


def _fit(rgb: RGBImage, side: int = _MAX_SIDE) -> RGBImage:
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def real_photos() -> dict[str, RGBImage]:
    """The 19 natural photos plus five more scikit-image ships (cells, a clock, a retina
    detail, a printed page, text), each at most 512 px on its long side."""
    photos = dict(natural_photos())
    for name in _EXTRA_PHOTOS:
        photos[name] = _grey3(np.asarray(getattr(data, name)()))
    return {name: _fit(rgb) for name, rgb in photos.items()}


def lfw_patches() -> list[RGBImage]:
    """scikit-image's LFW subset: 100 faces, then 100 non-face patches, 25x25 grey."""
    subset: Callable[[], np.ndarray] = data.lfw_subset
    return [_grey3(np.rint(face * 255)) for face in subset()]


# --- transforms: what re-posting, editing or evading does to a copy ---------------------------


def _jpeg(quality: int) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        return decode_image(encode_image(rgb, "jpeg", quality=quality)).rgb

    return transform


def _scale(factor: float) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        height, width = rgb.shape[:2]
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        method = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        return np.asarray(cv2.resize(rgb, size, interpolation=method))

    return transform


def _crop(top: float, left: float, keep: float) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        height, width = rgb.shape[:2]
        h, w = max(1, round(height * keep)), max(1, round(width * keep))
        y, x = round((height - h) * top), round((width - w) * left)
        return np.ascontiguousarray(rgb[y : y + h, x : x + w])

    return transform


def _rotate(degrees: float) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        height, width = rgb.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
        return np.asarray(
            cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
        )

    return transform


def _blur(sigma: float) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        return np.asarray(cv2.GaussianBlur(rgb, (0, 0), sigma))

    return transform


def _levels(gain: float, offset: float) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        return np.asarray(np.clip(rgb.astype(np.float32) * gain + offset, 0, 255), np.uint8)

    return transform


def _hue(shift: int) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift) % 180
        return np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))

    return transform


def _grey(rgb: RGBImage) -> RGBImage:
    return _grey3(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _sepia(rgb: RGBImage) -> RGBImage:
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    toned = rgb.astype(np.float32) @ matrix.T.astype(np.float32)
    return np.asarray(np.clip(toned, 0, 255), np.uint8)


def _noise(sigma: float) -> Transform:
    def transform(rgb: RGBImage) -> RGBImage:
        noise = np.random.default_rng(int(rgb.sum()) % 2**32).normal(0, sigma, rgb.shape)
        return np.asarray(np.clip(rgb + noise, 0, 255), np.uint8)

    return transform


def _repost(rgb: RGBImage) -> RGBImage:
    """A social network's path: crop 5 %, halve, JPEG 70."""
    return _jpeg(70)(_scale(0.5)(_crop(0.5, 0.5, 0.95)(rgb)))


def _flip(rgb: RGBImage) -> RGBImage:
    return np.ascontiguousarray(rgb[:, ::-1])


def _rot90(rgb: RGBImage) -> RGBImage:
    return np.ascontiguousarray(np.rot90(rgb))


def _thumbnail(rgb: RGBImage) -> RGBImage:
    return _fit(rgb, 64)


TRANSFORMS: dict[str, Transform] = {
    "jpeg90": _jpeg(90),
    "jpeg50": _jpeg(50),
    "jpeg25": _jpeg(25),
    "resize50": _scale(0.5),
    "resize25": _scale(0.25),
    "upscale150": _scale(1.5),
    "thumb64": _thumbnail,
    "crop90": _crop(0.5, 0.5, 0.9),
    "crop80_corner": _crop(0.0, 0.0, 0.8),
    "crop60": _crop(0.5, 0.5, 0.6),
    "rotate3": _rotate(3),
    "rotate10": _rotate(10),
    "rotate90": _rot90,
    "flip": _flip,
    "blur1": _blur(1.0),
    "blur3": _blur(3.0),
    "brighter": _levels(1.0, 30),
    "darker": _levels(0.7, 0),
    "low_contrast": _levels(0.5, 64),
    "hue60": _hue(30),
    "grey": _grey,
    "sepia": _sepia,
    "noise8": _noise(8),
    "repost": _repost,
}


# --- the adversarial set: little or no information --------------------------------------------


def _palette(count: int, seed: int) -> list[Colour]:
    named: list[Colour] = [
        (0, 0, 0),
        (255, 255, 255),
        (128, 128, 128),
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
    ]
    rng = np.random.default_rng(seed)
    extra: list[Colour] = []
    for _ in range(count):
        r, g, b = (int(v) for v in rng.integers(0, 256, 3))
        extra.append((r, g, b))
    return [*named, *extra]


def _flat(colour: Colour, height: int, width: int) -> RGBImage:
    return np.ascontiguousarray(np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)))


def _gradient(a: Colour, b: Colour, size: int, kind: str) -> RGBImage:
    yy, xx = np.mgrid[0:size, 0:size] / max(1, size - 1)
    t = {
        "horizontal": xx,
        "vertical": yy,
        "diagonal": (xx + yy) / 2,
        "radial": np.clip(np.hypot(xx - 0.5, yy - 0.5) / 0.7071, 0, 1),
    }[kind]
    start, end = np.array(a, np.float64), np.array(b, np.float64)
    return np.asarray(np.rint(start + (end - start) * t[..., None]), np.uint8)


def _pattern(kind: str, period: int, a: Colour, b: Colour, size: int) -> RGBImage:
    yy, xx = np.mgrid[0:size, 0:size]
    mask = {
        "stripes": (xx // period) % 2 == 0,
        "hstripes": (yy // period) % 2 == 0,
        "checker": ((xx // period) + (yy // period)) % 2 == 0,
        "split": xx < size * period // 8,
    }[kind]
    return np.asarray(np.where(mask[..., None], np.array(a), np.array(b)), np.uint8)


def adversarial_images(seed: int = 1) -> list[Sample]:
    """Flat colours, gradients, stripes, checkerboards, splits, tiny images and faint noise:
    pictures with nothing in them to identify, in many colours and sizes (332)."""
    rng = np.random.default_rng(seed)
    colours = _palette(60, seed)
    out: list[Sample] = []
    sizes = [(1, 1), (2, 2), (8, 8), (64, 64), (256, 256), (200, 300), (768, 1024)]
    for index, colour in enumerate(colours):
        height, width = sizes[index % len(sizes)]
        out.append(Sample("flat", f"flat{colour}@{width}x{height}", _flat(colour, height, width)))
        out.append(Sample("flat", f"flat{colour}@1x1", _flat(colour, 1, 1)))
    kinds = ("horizontal", "vertical", "diagonal", "radial")
    for index in range(60):
        a, b = colours[index % len(colours)], colours[(index * 7 + 3) % len(colours)]
        kind = kinds[index % len(kinds)]
        size = (32, 128, 256, 512)[(index // 4) % 4]
        out.append(Sample("gradient", f"{kind}{a}->{b}@{size}", _gradient(a, b, size, kind)))
    patterns = ("stripes", "hstripes", "checker", "split")
    for index in range(60):
        a, b = colours[index % len(colours)], colours[(index * 11 + 5) % len(colours)]
        kind = patterns[index % len(patterns)]
        period = (1, 2, 4, 8, 16, 32)[index % 6] if kind != "split" else 1 + index % 7
        size = (64, 200, 256)[index % 3]
        image = _pattern(kind, period, a, b, size)
        out.append(Sample("pattern", f"{kind}{period}{a}/{b}@{size}", image))
    for index in range(60):
        side = (1, 2, 3, 4, 5, 6)[index % 6]
        tiny = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        out.append(Sample("tiny", f"tiny{side}x{side}#{index}", tiny))
    for index in range(20):
        base = np.array(colours[index])
        amplitude = (1, 2, 3, 4)[index % 4]
        jitter = rng.integers(-amplitude, amplitude + 1, (128, 128, 3))
        noisy = np.clip(base + jitter, 0, 255).astype(np.uint8)
        out.append(Sample("faint noise", f"faint_noise{amplitude}{tuple(base)}", noisy))
    return out


# --- the two sets -----------------------------------------------------------------------------


def _distinct_crops(rgb: RGBImage, count: int, seed: int) -> Iterator[RGBImage]:
    """``count`` random crops of at least half the short side (distinct pictures)."""
    rng = np.random.default_rng(seed)
    height, width = rgb.shape[:2]
    short = min(height, width)
    for _ in range(count):
        size = int(rng.integers(short // 2, short + 1))
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        yield np.ascontiguousarray(rgb[top : top + size, left : left + size])


def _colour_wheel() -> RGBImage:
    wheel: Callable[[], RGBImage] = data.colorwheel
    return np.asarray(wheel())


def _low_information_stamps() -> dict[str, RGBImage]:
    rng = np.random.default_rng(7)
    return {
        "1x1 grey": _flat((128, 128, 128), 1, 1),
        "1x1 black": _flat((0, 0, 0), 1, 1),
        "flat grey 512": _flat((128, 128, 128), 512, 512),
        "flat white 256": _flat((255, 255, 255), 256, 256),
        "flat red 300x200": _flat((255, 0, 0), 200, 300),
        "flat black 64": _flat((0, 0, 0), 64, 64),
        "flat teal 1024x768": _flat((0, 128, 128), 768, 1024),
        "gradient h": _gradient((0, 0, 0), (255, 255, 255), 256, "horizontal"),
        "gradient v": _gradient((20, 40, 200), (250, 200, 10), 256, "vertical"),
        "gradient diag": _gradient((255, 0, 0), (0, 0, 255), 256, "diagonal"),
        "gradient radial": _gradient((255, 255, 255), (0, 0, 0), 256, "radial"),
        "checker 8": _pattern("checker", 8, (0, 0, 0), (255, 255, 255), 256),
        "stripes 4": _pattern("stripes", 4, (255, 0, 0), (255, 255, 255), 200),
        "split": _pattern("split", 4, (0, 0, 0), (255, 255, 255), 256),
        "tiny 2x2": rng.integers(0, 256, (2, 2, 3), dtype=np.uint8),
        "tiny 3x3": rng.integers(0, 256, (3, 3, 3), dtype=np.uint8),
        "tiny 4x4": rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
        "faint noise": (128 + rng.integers(-2, 3, (256, 256, 3))).astype(np.uint8),
        "white noise": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "colour wheel": _colour_wheel(),
    }


def stamped_images() -> dict[str, RGBImage]:
    """The 50 images one tenant stamped (real photos and low-information pictures)."""
    photos = real_photos()
    stamped = {name: photos[name] for name in STAMPED_PHOTOS}
    for index, name in enumerate(STAMPED_PHOTOS):
        [piece] = _distinct_crops(photos[name], 1, seed=100 + index)
        stamped[f"{name}/crop"] = piece
    for index, face in enumerate(lfw_patches()[:_STAMPED_FACES]):
        stamped[f"lfw{index}"] = face
    stamped.update(_low_information_stamps())
    return stamped


def never_stamped() -> list[Sample]:
    """1,000+ images none of which is, or is made from, a stamped one."""
    photos = {n: p for n, p in real_photos().items() if n not in STAMPED_PHOTOS}
    out: list[Sample] = []
    for index, (name, photo) in enumerate(sorted(photos.items())):
        out.append(Sample("photo", name, photo))
        for transform, apply in TRANSFORMS.items():
            out.append(Sample("photo transformed", f"{name}/{transform}", apply(photo)))
        for number, piece in enumerate(_distinct_crops(photo, 12, seed=index)):
            out.append(Sample("photo crop", f"{name}/crop{number}", piece))
    for index, face in enumerate(lfw_patches()[_STAMPED_FACES:], start=_STAMPED_FACES):
        group = "small face" if index < 100 else "small patch"
        out.append(Sample(group, f"lfw{index}", face))
    out.extend(adversarial_images())
    return out


def stamped_variants() -> list[Sample]:
    """The stamped real photos under every transform: copies a fingerprint should recover."""
    photos = real_photos()
    return [
        Sample(transform, name, apply(photos[name]))
        for name in STAMPED_PHOTOS
        for transform, apply in TRANSFORMS.items()
    ]
