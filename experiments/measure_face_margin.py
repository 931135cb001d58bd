"""Choose FACE_MARGIN by measurement: which crop around a detector's box looks most like a FER2013 face?

FER2013 faces are tight 48x48 crops. Each PublicTest face (and only PublicTest: choices never look
at the test data the model is judged on) is upscaled, pasted on a plain background, found again by
the detector, cropped with several margins and classified. Printed per margin: accuracy, and
agreement with the model's prediction on the original 48x48 face (the crop that matches training
best reproduces those predictions, whatever the model's quality). Also printed: the detector box's
size relative to the pasted face, which gives the geometric margin directly.

    python experiments/measure_face_margin.py --n 1000 --detector yunet
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from tqdm import tqdm

from moodlens.dataset.readers import read_csv
from moodlens.recognition.classifier import EmotionClassifier
from moodlens.recognition.detect import create_detector
from moodlens.recognition.preprocess import crop_face
from moodlens.spec import IMAGE_SIZE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default="/work/shared/data/fer2013/fer2013.csv.gz")
    ap.add_argument("--n", type=int, default=1000, help="PublicTest faces used (first N)")
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--sizes", default="64,128", help="pasted face sides in pixels")
    ap.add_argument("--margins", default="-0.1,-0.05,0,0.05,0.1,0.15,0.2,0.3")
    args = ap.parse_args()

    t0 = time.time()
    test = read_csv(args.csv).split("PublicTest")
    images, labels = test.images[: args.n], test.labels[: args.n]
    detector = create_detector(args.detector, min_confidence=0.6)
    clf = EmotionClassifier(args.model, threads=1)
    margins = [float(m) for m in args.margins.split(",")]
    ref = clf.predict(images)
    ref_pred = ref.argmax(1)
    print(f"model {clf.model_path} ({clf.name}), detector {detector.name}, "
          f"{len(images)} PublicTest faces")
    print(f"original 48x48 faces: accuracy {np.mean(ref_pred == labels):.4f}")

    for side in (int(s) for s in args.sizes.split(",")):
        found, rel, crops = [], [], {m: [] for m in margins}
        for i, face in enumerate(tqdm(images, desc=f"{side}px faces", leave=False)):
            canvas = np.full((side * 3, side * 3), 128, np.uint8)
            canvas[side:2 * side, side:2 * side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            faces = detector.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
            if len(faces) == 0:
                continue
            box = faces.boxes[int(np.argmax(faces.detector_scores))].astype(float)
            cx, cy = box[0] + box[2] / 2 - 1.5 * side, box[1] + box[3] / 2 - 1.5 * side
            if abs(cx) > side / 2 or abs(cy) > side / 2:  # found something, but not this face
                continue
            found.append(i)
            rel.append((box[2] / side, box[3] / side, cx / side, cy / side))
            for m in margins:
                crops[m].append(crop_face(canvas, box, m))
        idx = np.array(found)
        rel_a = np.array(rel)
        print(f"\n{side}px pasted faces: detector found {len(idx)}/{len(images)}; box w/side {rel_a[:, 0].mean():.3f}, "
              f"h/side {rel_a[:, 1].mean():.3f}, centre offset x {rel_a[:, 2].mean():+.3f} y {rel_a[:, 3].mean():+.3f}")
        # crop_face uses max(w, h): the margin that makes that side equal the FER face side.
        geo = (1.0 / np.maximum(rel_a[:, 0], rel_a[:, 1]) - 1.0) / 2.0
        print(f"geometric margin (median): {np.median(geo):+.3f}")
        print(f"accuracy of the original faces on this subset: {np.mean(ref_pred[idx] == labels[idx]):.4f}")
        print("margin  accuracy  agrees-with-48x48  mean |p - p48|")
        for m in margins:
            probs = clf.predict(np.stack(crops[m]).reshape(-1, IMAGE_SIZE, IMAGE_SIZE))
            pred = probs.argmax(1)
            print(f"{m:+6.2f}  {np.mean(pred == labels[idx]):8.4f}  {np.mean(pred == ref_pred[idx]):17.4f}"
                  f"  {np.abs(probs - ref[idx]).sum(1).mean():.4f}")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
