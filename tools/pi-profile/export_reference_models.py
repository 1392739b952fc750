#!/usr/bin/env python3
"""Exports the torchvision architectures of the published Raspberry Pi 4B measurements (bench/pi4b-profile/
measurements.csv) to ONNX, with random weights, so that ParetoPrune counts them exactly as it counts the models it
estimates (MACs, weight bytes, operators after BatchNormalization folding). Weights do not change the counts.

    /usr/bin/python3 tools/pi-profile/export_reference_models.py OUT_DIR

Needs Debian's python3-torch, python3-torchvision and python3-onnx (tools/install-debian-packages.sh does not install
them: only this script and the fixture generator use them)."""
import sys, os
import torch, torchvision.models as m

MODELS = {
    # name: (constructor, input size)
    "resnet18": (lambda: m.resnet18(), 224),
    "resnet50": (lambda: m.resnet50(), 224),
    "googlenet": (lambda: m.googlenet(aux_logits=False, init_weights=False), 224),
    "inception_v3_224": (lambda: m.inception_v3(aux_logits=False, init_weights=False), 224),
    "shufflenet_v2_x0_5": (lambda: m.shufflenet_v2_x0_5(), 224),
    "shufflenet_v2_x1_0": (lambda: m.shufflenet_v2_x1_0(), 224),
    "shufflenet_v2_x1_5": (lambda: m.shufflenet_v2_x1_5(), 224),
    "shufflenet_v2_x2_0": (lambda: m.shufflenet_v2_x2_0(), 224),
    "mobilenet_v2": (lambda: m.mobilenet_v2(), 224),
    "mobilenet_v3_large": (lambda: m.mobilenet_v3_large(), 224),
    "mobilenet_v3_small": (lambda: m.mobilenet_v3_small(), 224),
}

def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name, (make, size) in MODELS.items():
        path = os.path.join(out, name + ".onnx")
        if os.path.exists(path):
            continue
        model = make().eval()
        # Eval mode and constant folding: BatchNormalization is folded into the convolutions, as ParetoPrune deploys.
        torch.onnx.export(model, torch.randn(1, 3, size, size), path, opset_version=13, do_constant_folding=True,
                          input_names=["input"], output_names=["logits"])
        print(name, os.path.getsize(path))

if __name__ == "__main__":
    main(sys.argv[1])
