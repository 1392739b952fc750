namespace ParetoPrune.Devices;

/// <summary>
/// Reads the fields of one protobuf message, one at a time: the device side walks ONNX files without the ONNX schema
/// (it runs on the Pi with ONNX Runtime alone). Malformed bytes throw <see cref="FormatException"/>.
/// </summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data)
{
    readonly ReadOnlySpan<byte> data = data;
    int at;

    public int Field { get; private set; }
    public int Wire { get; private set; }

    /// <summary>A varint field's value (wire type 0).</summary>
    public ulong Value { get; private set; }

    /// <summary>A length-delimited field's payload (wire type 2), or a fixed field's 8 or 4 bytes (wire types 1 and 5).</summary>
    public ReadOnlySpan<byte> Bytes { get; private set; }

    public bool Next()
    {
        if (at >= data.Length) return false;
        ulong key = Varint(data, ref at);
        Field = (int)(key >> 3);
        Wire = (int)(key & 7);
        Bytes = default;
        Value = 0;
        switch (Wire)
        {
            case 0: Value = Varint(data, ref at); break;
            case 1: Bytes = Take(8); break;
            case 5: Bytes = Take(4); break;
            case 2:
                ulong length = Varint(data, ref at);
                if (length > (ulong)(data.Length - at)) throw new FormatException("length past the end");
                Bytes = Take((int)length);
                break;
            default: throw new FormatException($"wire type {Wire}");
        }
        return true;
    }

    ReadOnlySpan<byte> Take(int bytes)
    {
        if (at + bytes > data.Length) throw new FormatException("field past the end");
        var slice = data.Slice(at, bytes);
        at += bytes;
        return slice;
    }

    public static ulong Varint(ReadOnlySpan<byte> data, ref int at)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (at >= data.Length) throw new FormatException("varint past the end");
            byte b = data[at++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw new FormatException("varint too long");
    }

    /// <summary>A repeated varint field's values, packed (one payload) or not (this field's value), up to
    /// <paramref name="limit"/> in all: a hostile file's millions of values are not kept.</summary>
    public readonly void AddVarints(List<long> into, int limit = 1024)
    {
        if (Wire == 0) { if (into.Count < limit) into.Add((long)Value); return; }
        int i = 0;
        while (i < Bytes.Length && into.Count < limit) into.Add((long)Varint(Bytes, ref i));
    }
}
