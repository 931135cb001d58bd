"""Real test media for the recognition tests: public-domain faces (scikit-image's astronaut photo and
its LFW subset) pasted onto a background, with the box each face should get."""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data
from events_media import background, face_sprite

from moodlens.recognition.track import iou_matrix

#: Her face in scikit-image's 512x512 astronaut photo (x, y, w, h; YuNet's box at full size).
ASTRONAUT_FACE = (178, 63, 89, 112)


def astronaut_bgr() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])


def lfw_face(i: int) -> np.ndarray:
    """One tight 25x25 face of scikit-image's LFW subset, as BGR."""
    face = (skimage.data.lfw_subset()[i] * 255).round().astype(np.uint8)
    return cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)


def close_up(face_fraction: float, width: int, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's face cropped to ``face_fraction`` of the image width, scaled to ``width``; (image, box)."""
    fx, fy, fw, fh = ASTRONAUT_FACE
    crop_w = fw / face_fraction
    x0, y0 = round(fx + fw / 2 - crop_w / 2), max(0, round(fy + fh / 2 - crop_w * aspect / 2))
    crop = astronaut_bgr()[y0:y0 + round(crop_w * aspect), x0:x0 + round(crop_w)]
    k = width / crop.shape[1]
    image = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    return image, np.array([[(fx - x0) * k, (fy - y0) * k, fw * k, fh * k]])


def reference_box(detect, source: np.ndarray) -> tuple[float, float, float, float]:
    """The detector's box for ``source`` enlarged to 200 px, relative to the source's width and height."""
    k = 200 / max(source.shape[:2])
    big = cv2.resize(source, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    h, w = big.shape[:2]
    canvas = np.full((2 * h, 2 * w, 3), 128, np.uint8)
    canvas[h // 2:h // 2 + h, w // 2:w // 2 + w] = big
    found = detect(canvas)
    assert len(found), "reference face not found at 200 px"
    b = found.boxes[int(np.argmax(found.detector_scores))].astype(float)
    return (b[0] - w // 2) / w, (b[1] - h // 2) / h, b[2] / w, b[3] / h


def group_photo(detect, widths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A 1280x720 scene with real faces pasted so that their boxes are ``widths`` px wide; (image, true boxes)."""
    # LFW faces are 25-pixel tight crops with no hair or background: they take the middle sizes (upscaled
    # more they are only blur); the astronaut's head, with its surroundings as in a real photo, the rest.
    heads = [face_sprite(), face_sprite(mirror=True)]
    sources = heads + [lfw_face(i) for i in (0, 1, 2, 3, 5, 6)] + heads
    img = background(1280, 720)
    truth, x, y, row_h = [], 40, 60, 0
    for src, fw in zip(sources, widths, strict=False):
        rx, ry, rw, rh = reference_box(detect, src)
        k = fw / (rw * src.shape[1])
        sprite = cv2.resize(src, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        h, w = sprite.shape[:2]
        if x + w > 1240:
            x, y, row_h = 40, y + row_h + 60, 0
        img[y:y + h, x:x + w] = sprite
        truth.append((x + rx * w, y + ry * h, rw * w, rh * h))
        x, row_h = x + w + 80, max(row_h, h)
    return img, np.array(truth)


def match_boxes(truth: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each true box: the best IoU with a found box and that box's index."""
    if len(found) == 0:
        return np.zeros(len(truth)), np.full(len(truth), -1)
    iou = iou_matrix(truth, found)
    return iou.max(1), iou.argmax(1)


def write_video(path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v videos here"
    for f in frames:
        writer.write(f)
    writer.release()


def moving_faces_frames(n: int, faces: int = 2, size: tuple[int, int] = (640, 480), step: int = 10,
                        ) -> list[np.ndarray]:
    """``faces`` astronaut heads moving ``step`` px a frame in opposite directions, one row each."""
    w, h = size
    bg = background(w, h)
    sprite = face_sprite(scale=0.8)
    sh, sw = sprite.shape[:2]
    frames = []
    for t in range(n):
        img = bg.copy()
        for k in range(faces):
            x = 20 + t * step if k % 2 == 0 else w - sw - 20 - t * step
            x = int(np.clip(x, 0, w - sw))
            y = 20 + k * (sh + 30)
            img[y:y + sh, x:x + sw] = sprite if k % 2 == 0 else sprite[:, ::-1]
        frames.append(img)
    return frames


def photo_archive(folder, sizes: tuple[int, ...] = (640, 900, 480, 1100, 720, 560), broken: bool = True):
    """A folder of real photos: scikit-image's astronaut at each long side of ``sizes``, in turn as is,
    mirrored and cropped (one in a sub-folder), plus a photo without a face and, with ``broken``, a file
    that is not an image. Returns the folder."""
    astro = astronaut_bgr()
    (folder / "more").mkdir(parents=True, exist_ok=True)
    for i, side in enumerate(sizes):
        photo = cv2.resize(astro, (side, side), interpolation=cv2.INTER_AREA if side < 512 else cv2.INTER_CUBIC)
        if i % 3 == 1:
            photo = photo[:, ::-1]
        elif i % 3 == 2:
            photo = photo[: side * 7 // 10, side // 5:]  # the head and shoulders, not the whole suit
        name = f"more/astronaut_{i:02d}.jpg" if i == 2 else f"astronaut_{i:02d}.jpg"
        cv2.imwrite(str(folder / name), np.ascontiguousarray(photo))
    cv2.imwrite(str(folder / "empty_room.png"), background(800, 600))
    if broken:
        (folder / "broken.jpg").write_bytes(b"this is not a photo")
    return folder
