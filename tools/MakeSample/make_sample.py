#!/usr/bin/python3
"""Makes the Fashion-MNIST sample embedded in ParetoPrune.Objectives.

A stratified sample: 1,000 training and 200 test images per class, chosen by
ranking each class's indices by SHA-256("<seed>:<split>:<index>") - a choice that
depends only on the seed and the source files, never on a language's RNG.
Selected images keep their original relative order. Output is gzipped IDX with
mtime 0, so running it twice gives byte-identical files.

Usage: /usr/bin/python3 tools/MakeSample/make_sample.py [SOURCE_DIR] [OUTPUT_DIR]
"""
import gzip
import hashlib
import os
import struct
import sys

SEED = 20240601
PER_CLASS = {"train": 1000, "t10k": 200}


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        sys.exit(f"{path}: magic 0x{found:08x}, expected 0x{magic:08x}")
    return data


def write_gz(path, payload):
    with open(path, "wb") as raw:
        # mtime=0 and no file name in the header keep the output reproducible.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(payload)


def sample(source, output, split):
    images = read_idx(os.path.join(source, f"{split}-images-idx3-ubyte.gz"), 0x803)
    labels = read_idx(os.path.join(source, f"{split}-labels-idx1-ubyte.gz"), 0x801)
    count, rows, cols = struct.unpack(">III", images[4:16])
    assert struct.unpack(">I", labels[4:8])[0] == count
    size = rows * cols
    by_class = {}
    for i in range(count):
        by_class.setdefault(labels[8 + i], []).append(i)
    chosen = []
    for cls in sorted(by_class):
        ranked = sorted(by_class[cls], key=lambda i: hashlib.sha256(f"{SEED}:{split}:{i}".encode()).digest())
        if len(ranked) < PER_CLASS[split]:
            sys.exit(f"class {cls} has only {len(ranked)} {split} images")
        chosen.extend(ranked[: PER_CLASS[split]])
    chosen.sort()
    n = len(chosen)
    image_bytes = bytearray(struct.pack(">IIII", 0x803, n, rows, cols))
    label_bytes = bytearray(struct.pack(">II", 0x801, n))
    for i in chosen:
        image_bytes += images[16 + i * size: 16 + (i + 1) * size]
        label_bytes.append(labels[8 + i])
    write_gz(os.path.join(output, f"{split}-images-idx3-ubyte.gz"), bytes(image_bytes))
    write_gz(os.path.join(output, f"{split}-labels-idx1-ubyte.gz"), bytes(label_bytes))
    print(f"{split}: {n} images ({PER_CLASS[split]} per class) of {rows}x{cols}")


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    output = sys.argv[2] if len(sys.argv) > 2 else "data/fashion-mnist-sample"
    os.makedirs(output, exist_ok=True)
    for split in ("train", "t10k"):
        sample(source, output, split)


if __name__ == "__main__":
    main()
