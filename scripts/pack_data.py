"""Pack FER2013 (CSV or folders) into one compact ``.npz.xz`` for a training machine.

    python scripts/pack_data.py ../shared/data/fer2013/fer2013.csv.gz .cache/fer2013.npz.xz
    moodlens train --data .cache/fer2013.npz.xz --out runs/gpu --device cuda ...
"""

import sys

from moodlens.dataset.readers import load_dataset, save_packed

if __name__ == "__main__":
    src, dst = sys.argv[1:3]
    print(save_packed(load_dataset(src), dst))
