"""Datasets and batches: MNIST, Fashion-MNIST, CIFAR-10/100, image folders, the embedded MNIST subset.

    ds = cnnkit.data.load("mnist", "train")   # ArrayDataset: images uint8 (N, C, H, W), labels int64
    loader = cnnkit.data.DataLoader(ds, 64, shuffle=True, normalize="auto", augment="crop+flip")
    for x, y in loader: ...                    # x float32 (B, C, H, W), y int64 (B,)

Files are read from root=, else $CNNKIT_DATA, else ~/.cache/cnnkit. Nothing here imports Pillow or urllib
until an image folder is read or a download starts, and no file is ever unpickled without restriction.
"""

from cnnkit.data.base import ArrayDataset
from cnnkit.data.cifar import load_cifar, read_cifar_binary, read_cifar_python, safe_unpickle
from cnnkit.data.datasets import NAMES, SOURCES, MissingData, data_root, fetch_dataset, load, load_embedded
from cnnkit.data.download import DownloadError, fetch
from cnnkit.data.idx import read_idx
from cnnkit.data.imagefolder import load_image_folder
from cnnkit.data.loader import DataLoader, channel_stats
from cnnkit.data.preprocessing import Preprocessing
from cnnkit.data.transforms import RandomCrop, RandomHorizontalFlip

__all__ = [
    "NAMES", "SOURCES", "ArrayDataset", "DataLoader", "DownloadError", "MissingData", "Preprocessing",
    "RandomCrop",
    "RandomHorizontalFlip",
    "channel_stats", "data_root", "fetch", "fetch_dataset", "load", "load_cifar", "load_embedded",
    "load_image_folder", "read_cifar_binary", "read_cifar_python", "read_idx", "safe_unpickle",
]
