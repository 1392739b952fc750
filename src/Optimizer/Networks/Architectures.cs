using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Networks;

/// <summary>
/// The built-in networks, as ONNX models with initialised weights, for any input channels, input size and class
/// count. Every model takes "input" [batch, C, H, W] and returns logits "output" [batch, classes].
/// </summary>
public static class Architectures
{
    /// <summary>Names accepted by <see cref="Build"/>.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "simplecnn", "vgg11", "vgg13", "vgg16", "vgg19", "resnet20", "resnet32", "resnet56", "resnet110",
        "resnet18", "resnet34", "mobilenetv2",
    ];

    /// <summary>Networks whose width <see cref="Build"/> can scale.</summary>
    public static readonly IReadOnlyList<string> Scalable = ["vgg11", "vgg13", "vgg16", "vgg19", "mobilenetv2"];

    /// <summary>
    /// Builds a network by name ("resnet56", "mobilenetv2", …) with default options; <paramref name="width"/> scales
    /// every layer's width for the <see cref="Scalable"/> networks and must be 1 for the others.
    /// </summary>
    public static ModelProto Build(string name, int inputChannels, int size, int classes, int seed = 0, double width = 1.0)
    {
        name = name.ToLowerInvariant();
        if (!Names.Contains(name)) throw new ArgumentException($"unknown architecture '{name}'; known: {string.Join(", ", Names)}");
        if (width is <= 0 or > 4 || double.IsNaN(width)) throw new ArgumentException($"width multiplier must be in (0, 4], got {width}");
        if (width != 1.0 && !Scalable.Contains(name))
            throw new ArgumentException($"a width multiplier applies to {string.Join(", ", Scalable)}, not {name}");
        return name switch
        {
            "simplecnn" => SimpleCnn(inputChannels, size, classes, seed: seed),
            "vgg11" => Vgg(11, inputChannels, size, classes, width, seed: seed),
            "vgg13" => Vgg(13, inputChannels, size, classes, width, seed: seed),
            "vgg16" => Vgg(16, inputChannels, size, classes, width, seed: seed),
            "vgg19" => Vgg(19, inputChannels, size, classes, width, seed: seed),
            "resnet20" => CifarResNet(20, inputChannels, size, classes, seed: seed),
            "resnet32" => CifarResNet(32, inputChannels, size, classes, seed: seed),
            "resnet56" => CifarResNet(56, inputChannels, size, classes, seed: seed),
            "resnet110" => CifarResNet(110, inputChannels, size, classes, seed: seed),
            "resnet18" => ImageNetResNet(18, inputChannels, size, classes, seed),
            "resnet34" => ImageNetResNet(34, inputChannels, size, classes, seed),
            "mobilenetv2" => MobileNetV2(inputChannels, size, classes, width, seed: seed),
            _ => throw new ArgumentException($"unknown architecture '{name}'; known: {string.Join(", ", Names)}"),
        };
    }

    /// <summary>
    /// Conv3×3-BN-ReLU layers of the given widths, a 2×2 max pool after every second one, then Flatten of the C×H×W
    /// map and one Gemm: small, fast, and its classifier sees every pixel of every channel.
    /// </summary>
    public static ModelProto SimpleCnn(int inputChannels, int size, int classes, IReadOnlyList<int>? widths = null, int seed = 0)
    {
        widths ??= [32, 32, 64, 64];
        var w = new LayerWriter("simplecnn", inputChannels, size, size, seed);
        string x = w.Input;
        int channels = inputChannels;
        for (int i = 0; i < widths.Count; i++)
        {
            x = w.Relu(w.ConvBn(x, $"features.{i}", channels, widths[i], 3), $"features.{i}.relu");
            channels = widths[i];
            if (i % 2 == 1 && w.Shape[1] >= 2) x = w.MaxPool(x, $"features.{i}.pool", 2, 2);
        }
        long features = w.Shape[0] * w.Shape[1] * w.Shape[2];
        x = w.Flatten(x, "flatten");
        return w.Finish(w.Linear(x, "classifier", (int)features, classes), classes, "simplecnn");
    }

    static readonly Dictionary<int, int[]> VggConfigurations = new()
    {
        [11] = [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        [13] = [64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        [16] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
        [19] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0],
    };

    /// <summary>
    /// CIFAR-style VGG (Li et al. 2017): 3×3 conv-BN-ReLU stacks and 2×2 max pools (a pool is skipped once the map is
    /// 1×1, so 28×28 inputs work), then Flatten and a classifier of the given hidden widths (default 512-512).
    /// <paramref name="widthMultiplier"/> scales every convolution and the default classifier (at least 4 channels each).
    /// </summary>
    public static ModelProto Vgg(int depth, int inputChannels, int size, int classes, double widthMultiplier = 1.0,
                                 IReadOnlyList<int>? hidden = null, int seed = 0)
    {
        if (!VggConfigurations.TryGetValue(depth, out var configuration)) throw new ArgumentException($"VGG depth must be 11, 13, 16 or 19, got {depth}");
        int Scaled(int width) => Math.Max(4, (int)Math.Round(width * widthMultiplier));
        configuration = [.. configuration.Select(c => c == 0 ? 0 : Scaled(c))];
        hidden ??= [Scaled(512), Scaled(512)];
        var w = new LayerWriter(widthMultiplier == 1.0 ? $"vgg{depth}" : $"vgg{depth}_{widthMultiplier:0.##}", inputChannels, size, size, seed);
        string x = w.Input;
        int channels = inputChannels, conv = 0;
        foreach (int width in configuration)
        {
            if (width == 0)
            {
                if (w.Shape[1] >= 2) x = w.MaxPool(x, $"features.pool{conv}", 2, 2);
                continue;
            }
            x = w.Relu(w.ConvBn(x, $"features.{conv}", channels, width, 3), $"features.{conv}.relu");
            channels = width;
            conv++;
        }
        int features = (int)(w.Shape[0] * w.Shape[1] * w.Shape[2]);
        x = w.Flatten(x, "flatten");
        for (int i = 0; i < hidden.Count; i++)
        {
            x = w.Relu(w.Linear(x, $"classifier.{i}", features, hidden[i]), $"classifier.{i}.relu");
            features = hidden[i];
        }
        return w.Finish(w.Linear(x, "classifier.out", features, classes), classes,
                        widthMultiplier == 1.0 ? $"vgg{depth}" : $"vgg{depth}-{widthMultiplier:0.##}");
    }

    /// <summary>How a CIFAR ResNet's shortcut changes width: A pads zero channels (He et al.'s CIFAR models), B projects with 1×1 conv + BN.</summary>
    public enum Shortcut { A, B }

    /// <summary>CIFAR ResNet-(6n+2): 16-32-64 channels, n basic blocks per stage, global average pool, one Gemm.</summary>
    public static ModelProto CifarResNet(int depth, int inputChannels, int size, int classes, Shortcut shortcut = Shortcut.A, int seed = 0)
    {
        if (depth < 8 || (depth - 2) % 6 != 0) throw new ArgumentException($"CIFAR ResNet depth must be 6n+2 (20, 32, 56, 110), got {depth}");
        int blocks = (depth - 2) / 6;
        var w = new LayerWriter($"resnet{depth}", inputChannels, size, size, seed);
        string x = w.Relu(w.ConvBn(w.Input, "stem", inputChannels, 16, 3), "stem.relu");
        int channels = 16;
        int[] widths = [16, 32, 64];
        for (int stage = 0; stage < 3; stage++)
            for (int block = 0; block < blocks; block++)
            {
                int stride = stage > 0 && block == 0 ? 2 : 1;
                x = BasicBlock(w, x, $"layer{stage + 1}.{block}", channels, widths[stage], stride, shortcut);
                channels = widths[stage];
            }
        x = w.Flatten(w.GlobalAveragePool(x, "avgpool"), "flatten");
        return w.Finish(w.Linear(x, "fc", channels, classes), classes, $"resnet{depth}{(shortcut == Shortcut.B ? "-b" : "")}");
    }

    /// <summary>ImageNet ResNet-18/34: 7×7 stem and max pool, 64-128-256-512 basic blocks, 1×1 projection shortcuts.</summary>
    public static ModelProto ImageNetResNet(int depth, int inputChannels, int size, int classes, int seed = 0)
    {
        int[] blocks = depth switch
        {
            18 => [2, 2, 2, 2],
            34 => [3, 4, 6, 3],
            _ => throw new ArgumentException($"ImageNet ResNet depth must be 18 or 34, got {depth}"),
        };
        var w = new LayerWriter($"resnet{depth}", inputChannels, size, size, seed);
        string x = w.Relu(w.BatchNorm(w.Conv(w.Input, "conv1", inputChannels, 64, 7, 2, 3), "bn1", 64), "relu");
        x = w.MaxPool(x, "maxpool", 3, 2, 1);
        int channels = 64;
        int[] widths = [64, 128, 256, 512];
        for (int stage = 0; stage < 4; stage++)
            for (int block = 0; block < blocks[stage]; block++)
            {
                int stride = stage > 0 && block == 0 ? 2 : 1;
                x = BasicBlock(w, x, $"layer{stage + 1}.{block}", channels, widths[stage], stride, Shortcut.B);
                channels = widths[stage];
            }
        x = w.Flatten(w.GlobalAveragePool(x, "avgpool"), "flatten");
        return w.Finish(w.Linear(x, "fc", channels, classes), classes, $"resnet{depth}");
    }

    static string BasicBlock(LayerWriter w, string x, string name, int inChannels, int outChannels, int stride, Shortcut shortcut)
    {
        var inputShape = w.Shape;
        string y = w.Relu(w.ConvBn(x, $"{name}.conv1", inChannels, outChannels, 3, stride), $"{name}.relu1");
        y = w.ConvBn(y, $"{name}.conv2", outChannels, outChannels, 3);
        var outputShape = w.Shape;
        string identity = x;
        if (stride != 1 || inChannels != outChannels)
        {
            if (shortcut == Shortcut.B)
            {
                w.ShapeOverride(inputShape);
                identity = w.ConvBn(x, $"{name}.downsample", inChannels, outChannels, 1, stride);
            }
            else
            {
                // Option A: x[:, :, ::2, ::2] (a 1×1 max pool with stride 2) padded with zero channels on both sides.
                string subsampled = stride == 1 ? x : w.Builder.Node("MaxPool", [x], $"{name}.shortcut.subsample",
                    ("kernel_shape", new long[] { 1, 1 }), ("strides", new long[] { stride, stride }));
                int extra = outChannels - inChannels;
                string pads = w.Builder.Int64Initializer($"{name}.shortcut.pads", [8], [0, extra / 2, 0, 0, 0, extra - extra / 2, 0, 0]);
                identity = w.Builder.Node("Pad", [subsampled, pads], $"{name}.shortcut.pad", ("mode", "constant"));
            }
            w.ShapeOverride(outputShape);
        }
        return w.Relu(w.Builder.Node("Add", [y, identity], $"{name}.add"), $"{name}.relu2");
    }

    /// <summary>
    /// MobileNetV2 (Sandler et al. 2018) with a width multiplier; channels divisible by 8, ReLU6 as Clip.
    /// Below 64×64 pixels the stem and the first strided stage use stride 1 (the usual CIFAR adaptation).
    /// </summary>
    public static ModelProto MobileNetV2(int inputChannels, int size, int classes, double widthMultiplier = 1.0, int seed = 0)
    {
        (int Expansion, int Channels, int Repeats, int Stride)[] settings =
            [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
        bool small = size < 64;
        var w = new LayerWriter($"mobilenetv2_{widthMultiplier:0.##}", inputChannels, size, size, seed);
        int channels = Divisible(32 * widthMultiplier);
        int last = Divisible(1280 * Math.Max(1.0, widthMultiplier));
        string x = w.Relu6(w.ConvBn(w.Input, "features.0", inputChannels, channels, 3, small ? 1 : 2), "features.0.relu6");
        int layer = 1;
        foreach (var (expansion, c, repeats, stride) in settings)
        {
            int output = Divisible(c * widthMultiplier);
            for (int i = 0; i < repeats; i++)
            {
                int s = i > 0 ? 1 : (small && c == 24 ? 1 : stride);
                string name = $"features.{layer++}";
                int hidden = channels * expansion;
                string y = x;
                if (expansion != 1) y = w.Relu6(w.ConvBn(y, $"{name}.expand", channels, hidden, 1), $"{name}.expand.relu6");
                y = w.Relu6(w.ConvBn(y, $"{name}.depthwise", hidden, hidden, 3, s, groups: hidden), $"{name}.depthwise.relu6");
                y = w.ConvBn(y, $"{name}.project", hidden, output, 1);
                x = s == 1 && channels == output ? w.Builder.Node("Add", [x, y], $"{name}.add") : y;
                channels = output;
            }
        }
        x = w.Relu6(w.ConvBn(x, $"features.{layer}", channels, last, 1), $"features.{layer}.relu6");
        x = w.Flatten(w.GlobalAveragePool(x, "avgpool"), "flatten");
        x = w.Builder.Node("Dropout", [x, w.Builder.Initializer("dropout.ratio", [], [0.2f])], "dropout");
        return w.Finish(w.Linear(x, "classifier", last, classes), classes, $"mobilenetv2-{widthMultiplier:0.##}");
    }

    /// <summary>torchvision's _make_divisible: nearest multiple of 8, never more than 10 % below the request.</summary>
    static int Divisible(double value, int divisor = 8)
    {
        int result = Math.Max(divisor, (int)(value + divisor / 2.0) / divisor * divisor);
        return result < 0.9 * value ? result + divisor : result;
    }
}
