using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>Reads and creates the values of ONNX <see cref="TensorProto"/>s (raw_data or typed fields).</summary>
public static class OnnxTensors
{
    public static long ElementCount(TensorProto tensor)
    {
        long count = 1;
        foreach (long d in tensor.Dims) count *= d;
        return count;
    }

    public static long[] Shape(TensorProto tensor) => tensor.Dims.ToArray();

    /// <summary>Size in bytes of one element of an ONNX data type, or 0 when not fixed (strings).</summary>
    public static int ElementSize(int dataType) => (TensorProto.Types.DataType)dataType switch
    {
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 4,
        TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64
            or TensorProto.Types.DataType.Complex64 => 8,
        TensorProto.Types.DataType.Complex128 => 16,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 or TensorProto.Types.DataType.Int16
            or TensorProto.Types.DataType.Uint16 => 2,
        TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Bool => 1,
        _ => 0,
    };

    public static float[] ReadFloats(TensorProto tensor)
    {
        RequireEmbedded(tensor);
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
            throw new OnnxModelException($"tensor '{tensor.Name}' has data type {DataTypeName(tensor.DataType)}, expected FLOAT");
        long count = ElementCount(tensor);
        if (!tensor.RawData.IsEmpty)
        {
            if (tensor.RawData.Length != count * 4)
                throw new OnnxModelException($"tensor '{tensor.Name}' has {tensor.RawData.Length} bytes of raw data for {count} floats");
            var values = new float[count];
            tensor.RawData.Span.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            if (!BitConverter.IsLittleEndian) ReverseEach(MemoryMarshal.Cast<float, int>(values.AsSpan()));
            return values;
        }
        if (tensor.FloatData.Count != count)
            throw new OnnxModelException($"tensor '{tensor.Name}' has {tensor.FloatData.Count} values for shape [{string.Join(",", tensor.Dims)}]");
        return tensor.FloatData.ToArray();
    }

    /// <summary>Integer values of an INT64 or INT32 tensor (shapes, axes, pads given as inputs).</summary>
    public static long[] ReadInt64s(TensorProto tensor)
    {
        RequireEmbedded(tensor);
        long count = ElementCount(tensor);
        var type = (TensorProto.Types.DataType)tensor.DataType;
        if (type == TensorProto.Types.DataType.Int64)
        {
            if (!tensor.RawData.IsEmpty)
            {
                if (tensor.RawData.Length != count * 8)
                    throw new OnnxModelException($"tensor '{tensor.Name}' has {tensor.RawData.Length} bytes of raw data for {count} int64 values");
                var values = new long[count];
                for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadInt64LittleEndian(tensor.RawData.Span[(i * 8)..]);
                return values;
            }
            return tensor.Int64Data.ToArray();
        }
        if (type == TensorProto.Types.DataType.Int32)
        {
            if (!tensor.RawData.IsEmpty)
            {
                var values = new long[count];
                for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadInt32LittleEndian(tensor.RawData.Span[(i * 4)..]);
                return values;
            }
            return tensor.Int32Data.Select(v => (long)v).ToArray();
        }
        if (type == TensorProto.Types.DataType.Float)
            return ReadFloats(tensor).Select(v => (long)v).ToArray();
        throw new OnnxModelException($"tensor '{tensor.Name}' has data type {DataTypeName(tensor.DataType)}, expected an integer type");
    }

    public static TensorProto CreateFloat(string name, ReadOnlySpan<long> dims, ReadOnlySpan<float> values)
    {
        long count = 1;
        foreach (long d in dims) count *= d;
        if (count != values.Length)
            throw new ArgumentException($"tensor '{name}': {values.Length} values for shape [{string.Join(",", dims.ToArray())}]");
        byte[] raw = new byte[values.Length * 4];
        MemoryMarshal.AsBytes(values).CopyTo(raw);
        if (!BitConverter.IsLittleEndian) ReverseEach(MemoryMarshal.Cast<byte, int>(raw.AsSpan()));
        return Raw(name, TensorProto.Types.DataType.Float, dims, raw);
    }

    public static TensorProto CreateInt64(string name, ReadOnlySpan<long> dims, ReadOnlySpan<long> values)
    {
        byte[] raw = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(i * 8), values[i]);
        return Raw(name, TensorProto.Types.DataType.Int64, dims, raw);
    }

    public static TensorProto CreateInt32(string name, ReadOnlySpan<long> dims, ReadOnlySpan<int> values)
    {
        byte[] raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(raw.AsSpan(i * 4), values[i]);
        return Raw(name, TensorProto.Types.DataType.Int32, dims, raw);
    }

    public static TensorProto CreateInt8(string name, ReadOnlySpan<long> dims, ReadOnlySpan<sbyte> values) =>
        Raw(name, TensorProto.Types.DataType.Int8, dims, MemoryMarshal.AsBytes(values));

    public static TensorProto CreateUint8(string name, ReadOnlySpan<long> dims, ReadOnlySpan<byte> values) =>
        Raw(name, TensorProto.Types.DataType.Uint8, dims, values);

    /// <summary>A tensor of little-endian <paramref name="raw"/> bytes (raw_data, as exporters write it).</summary>
    static TensorProto Raw(string name, TensorProto.Types.DataType type, ReadOnlySpan<long> dims, ReadOnlySpan<byte> raw)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type };
        tensor.Dims.Add(dims.ToArray());
        tensor.RawData = ByteString.CopyFrom(raw);
        return tensor;
    }

    /// <summary>Integer and boolean element types: never parameters (shapes, indices, masks).</summary>
    public static bool IsInteger(int dataType) => (TensorProto.Types.DataType)dataType is
        TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Int16
        or TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Uint16
        or TensorProto.Types.DataType.Uint32 or TensorProto.Types.DataType.Uint64 or TensorProto.Types.DataType.Bool;

    public static string DataTypeName(int dataType) =>
        Enum.IsDefined(typeof(TensorProto.Types.DataType), dataType)
            ? ((TensorProto.Types.DataType)dataType).ToString().ToUpperInvariant()
            : $"#{dataType}";

    static void RequireEmbedded(TensorProto tensor)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External || tensor.ExternalData.Count > 0)
            throw new OnnxModelException($"tensor '{tensor.Name}' keeps its data in an external file, which is not supported; " +
                                         "save the model with all tensors embedded (onnx.save_model(..., save_as_external_data=False))");
    }

    static void ReverseEach(Span<int> values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReverseEndianness(values[i]);
    }
}
