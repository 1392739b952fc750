#!/usr/bin/python3
"""Training throughput of PyTorch on the networks ParetoPrune builds, for `paretoprune-bench training-pytorch`.

Usage: train_throughput.py NETWORK STEPS [THREADS] [nchw|channels_last] -> one JSON line {"network", "images_per_second", "torch", "mkldnn",
"params"} (params: learnable parameters, which the C# side checks against its own network).
The networks mirror src/Optimizer/Networks/Architectures.cs (conv without bias + BN, ReLU; option-A ResNet shortcuts;
MobileNetV2 with the CIFAR stride adaptation), batch 128 of 1x28x28, 10 classes, SGD with momentum, as the C# side.
Debian's python3-torch is enough; nothing is downloaded.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))


class SimpleCnn(nn.Module):
    def __init__(self, widths=(32, 32, 64, 64), classes=10, size=28):
        super().__init__()
        layers, channels = [], 1
        for i, w in enumerate(widths):
            layers += [conv_bn(channels, w, 3), nn.ReLU()]
            channels = w
            if i % 2 == 1 and size >= 2:
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * size * size, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.conv2 = conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        identity = x
        if self.stride != 1 or self.extra:
            identity = x[:, :, ::self.stride, ::self.stride]  # option A: subsample, pad zero channels on both sides
            identity = F.pad(identity, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y + identity)


class CifarResNet(nn.Module):
    def __init__(self, depth=20, classes=10):
        super().__init__()
        blocks, layers, channels = (depth - 2) // 6, [], 16
        self.stem = conv_bn(1, 16, 3)
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks):
                layers.append(BasicBlock(channels, width, 2 if stage > 0 and block == 0 else 1))
                channels = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def divisible(value, divisor=8):
    result = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return result + divisor if result < 0.9 * value else result


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expansion):
        super().__init__()
        hidden = cin * expansion
        layers = [] if expansion == 1 else [conv_bn(cin, hidden, 1), nn.ReLU6()]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(), conv_bn(hidden, cout, 1)]
        self.body, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    def __init__(self, width=0.5, classes=10, size=28):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        small = size < 64
        channels, last = divisible(32 * width), divisible(1280 * max(1.0, width))
        layers = [conv_bn(1, channels, 3, 1 if small else 2), nn.ReLU6()]
        for expansion, c, repeats, stride in settings:
            output = divisible(c * width)
            for i in range(repeats):
                s = 1 if i > 0 else (1 if small and c == 24 else stride)
                layers.append(InvertedResidual(channels, output, s, expansion))
                channels = output
        layers += [conv_bn(channels, last, 1), nn.ReLU6()]
        self.features, self.dropout, self.classifier = nn.Sequential(*layers), nn.Dropout(0.2), nn.Linear(last, classes)

    def forward(self, x):
        return self.classifier(self.dropout(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)))


NETWORKS = {"simplecnn": SimpleCnn, "resnet20": CifarResNet, "mobilenetv2-0.5": MobileNetV2}


def main():
    name, steps = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    torch.manual_seed(1)
    layout = sys.argv[4] if len(sys.argv) > 4 else "nchw"
    model = NETWORKS[name]().train()
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    if layout == "channels_last":  # PyTorch's own recipe for CPU training speed
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"network": name, "layout": layout, "images_per_second": steps * 128 / seconds, "torch": torch.__version__,
                      "mkldnn": torch.backends.mkldnn.is_available(),
                      "params": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
