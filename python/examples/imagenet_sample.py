"""A folder of ImageNet-style images as NumPy arrays, for the demo and bench/imagenet.py.

The images are 224×224 RGB, already resized (shorter side 256) and centre-cropped; each file name
starts with its class's WordNet id (``n01440764_tench.JPEG``) and the class index is that id's
position among the 1000 sorted ids (torchvision's order). Normalized as torchvision does:
``(x/255 − mean) / std``, NCHW float32. Decoding JPEG needs Pillow (``pip install pillow``).
"""

import os

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


def files(folder):
    """The image files of `folder`, sorted (the order that splits calibration from evaluation)."""
    return sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpeg", ".jpg", ".png")))


def load(folder, calib, limit=None):
    """(calibration images, evaluation images, evaluation labels): the first `calib` files in sorted
    order calibrate, the next ones (all, or `limit`) evaluate."""
    from PIL import Image
    names = files(folder)
    wnids = sorted({f.split("_")[0] for f in names})
    if len(wnids) != 1000:
        raise ValueError(f"{folder}: {len(wnids)} WordNet ids among the file names; the labels need all 1000")
    chosen = names[:calib + limit] if limit is not None else names
    x = np.empty((len(chosen), 3, 224, 224), np.float32)
    for i, name in enumerate(chosen):
        with Image.open(os.path.join(folder, name)) as image:
            rgb = np.asarray(image.convert("RGB"), np.float32)
        if rgb.shape != (224, 224, 3):
            raise ValueError(f"{name}: {rgb.shape[1]}×{rgb.shape[0]}; the images must be centre-cropped to 224×224")
        x[i] = rgb.transpose(2, 0, 1)
    x = (x / 255.0 - MEAN) / STD
    labels = np.array([wnids.index(f.split("_")[0]) for f in chosen])
    return x[:calib], x[calib:], labels[calib:]
