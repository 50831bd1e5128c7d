using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Formats;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Quantization;

/// <summary>
/// Model folders in the layout transformers saves with bitsandbytes: config.json with a
/// <c>quantization_config</c> (<c>quant_method: "bitsandbytes"</c>) and safetensors in which each quantized
/// Linear's <c>weight</c> is the packed 4-bit codes plus <c>weight.absmax</c>, <c>weight.quant_map</c>,
/// <c>weight.nested_absmax</c>, <c>weight.nested_quant_map</c> and <c>weight.quant_state.bitsandbytes__nf4</c>
/// (or <c>__fp4</c>), or the int8 rows plus <c>SCB</c> and <c>weight_format</c>. Also quantizes a
/// full-precision checkpoint while loading it. Bad input is an error naming the tensor.
/// </summary>
public static class BitsAndBytesCheckpoint
{
    /// <summary>The bitsandbytes quantization a config.json records, or null when it records none.</summary>
    /// <exception cref="InvalidDataException">The quantization_config is not bitsandbytes' or asks for what is not supported.</exception>
    public static BitsAndBytesConfig? ReadConfig(ModelConfig config, string source)
    {
        if (config.Raw["quantization_config"] is not JsonNode node) return null;
        if (node is not JsonObject o) throw new InvalidDataException($"{source}: quantization_config must be an object, got {node.ToJsonString()}.");
        return BitsAndBytesConfig.Parse(o, source);
    }

    /// <summary>
    /// Builds <paramref name="config"/>'s architecture in <paramref name="dtype"/> and fills it from
    /// <paramref name="checkpoint"/>: the targets of <paramref name="quantization"/> become quantized layers,
    /// read as stored when <paramref name="preQuantized"/>, or quantized from the checkpoint's full-precision
    /// weights (cast to <paramref name="dtype"/> first, as transformers loads them) otherwise. Every other tensor
    /// loads as <see cref="CheckpointLoader"/> loads it. The model's config records the quantization.
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing, of another dtype or shape, or its quant state does not fit; the message names it.</exception>
    public static nn.Module Load(ModelConfig config, SafetensorsCheckpoint checkpoint, BitsAndBytesConfig quantization, bool preQuantized, ScalarType dtype) =>
        Load(config, checkpoint, quantization, preQuantized, dtype, dequantize: false);

    /// <summary>
    /// A folder saved quantized, loaded in full precision (transformers' <c>model.dequantize()</c>): each stored
    /// quantized weight is read as <see cref="Load(ModelConfig, SafetensorsCheckpoint, BitsAndBytesConfig, bool, ScalarType)"/>
    /// reads it, decoded (bitsandbytes' dequantize) and copied into the model's own Linear or GPT-2 Conv1D
    /// (transposed back), in <paramref name="dtype"/>. The config no longer records a quantization.
    /// </summary>
    /// <exception cref="InvalidDataException">As for loading the folder quantized.</exception>
    public static nn.Module LoadDequantized(ModelConfig config, SafetensorsCheckpoint checkpoint, BitsAndBytesConfig stored, ScalarType dtype) =>
        Load(config, checkpoint, stored, preQuantized: true, dtype, dequantize: true);

    private static nn.Module Load(ModelConfig config, SafetensorsCheckpoint checkpoint, BitsAndBytesConfig quantization, bool preQuantized, ScalarType dtype, bool dequantize)
    {
        nn.Module model = ModelFactory.Create(config);
        var originals = new Dictionary<string, nn.Module>(StringComparer.Ordinal); // dequantize: the modules to put back
        try
        {
            if (dtype != ScalarType.Float32) model.to(dtype);
            string prefix = ModelFactory.BasePrefix(config);
            IReadOnlyList<string> targets = ModelQuantizer.Targets(model, quantization);
            ModelQuantizer.CheckNotTied(model, targets);
            var handled = new HashSet<string>(StringComparer.Ordinal);
            var surgeon = new ModelSurgeon(model);
            foreach (string path in targets)
            {
                nn.Module original = surgeon.Get(path);
                string key = ResolveModule(checkpoint, path, prefix);
                QuantizedLinear layer;
                using (no_grad())
                {
                    (Tensor randomWeight, Tensor? bias) = ModelQuantizer.WeightOf(original);
                    using (randomWeight)
                    {
                        long outFeatures = randomWeight.shape[0], inFeatures = randomWeight.shape[1];
                        layer = preQuantized
                            ? ReadQuantized(checkpoint, key, outFeatures, inFeatures, bias, quantization, dtype, handled)
                            : QuantizeFromCheckpoint(checkpoint, key, original, bias, quantization, dtype, handled);
                    }
                }
                surgeon.Replace(path, layer);
                if (dequantize) originals[path] = original;
                else original.Dispose();
            }
            // The rest, and the quantized layers' biases (still the random ones of the modules they replaced).
            CheckpointLoader.Load(model, checkpoint, prefix, handled);
            if (dequantize)
            {
                // Each full-precision module takes its place back with the decoded weight and the loaded bias.
                foreach ((string path, nn.Module original) in originals)
                {
                    using var layer = (QuantizedLinear)surgeon.Get(path);
                    CopyDequantized(layer, original);
                    surgeon.Replace(path, original);
                }
                config.Raw.Remove("quantization_config");
            }
            else config.Raw["quantization_config"] = quantization.ToJson();
            model.eval();
            return model;
        }
        catch
        {
            foreach (nn.Module original in originals.Values) original.Dispose();
            model.Dispose();
            throw;
        }
    }

    // The decoded weight [out, in] and the bias into the full-precision module it was read for (GPT-2's Conv1D holds [in, out]).
    private static void CopyDequantized(QuantizedLinear layer, nn.Module original)
    {
        using (no_grad())
        {
            (Parameter weight, Parameter? bias, bool transposed) = original switch
            {
                Conv1D c => (c.weight, c.bias, true),
                Linear l => (l.weight!, l.bias, false),
                _ => throw new ArgumentException($"{original.GetType().Name} is not a Linear or Conv1D.", nameof(original)),
            };
            using (Tensor w = layer.Dequantize(weight.dtype)) weight.copy_(transposed ? w.t() : w);
            if (bias is not null && layer.Bias is { } loaded) bias.copy_(loaded);
        }
    }

    /// <summary>
    /// Writes <paramref name="model"/> as transformers' <c>save_pretrained</c> does for a bitsandbytes model:
    /// config.json (with <paramref name="quantization"/> as quantization_config) and model.safetensors holding
    /// every parameter (a tied weight once, under the embedding's name) and each quantized layer's tensors.
    /// Both files are written atomically.
    /// </summary>
    public static void Save(nn.Module model, ModelConfig config, BitsAndBytesConfig quantization, string folder)
    {
        Directory.CreateDirectory(folder);
        IReadOnlyDictionary<string, string> tied = (model as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        var tensors = new List<SafetensorsWriteTensor>();
        foreach ((string name, Parameter p) in model.named_parameters())
            if (!tied.ContainsKey(name)) tensors.Add(TensorBridge.ToWrite(name, p));
        foreach ((string path, nn.Module module) in model.named_modules())
        {
            switch (module)
            {
                case Linear4bit l: tensors.AddRange(FourBitTensors(path, l)); break;
                case Linear8bit l: tensors.AddRange(EightBitTensors(path, l)); break;
                case QuantizedLinear other: throw new NotSupportedException($"'{path}' is a {other.GetType().Name}, which has no bitsandbytes layout.");
            }
        }
        SafetensorsWriter.Write(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        JsonObject json = config.Raw.DeepClone().AsObject();
        json["quantization_config"] = quantization.ToJson();
        AtomicFile.Write(Path.Combine(folder, "config.json"), s =>
        {
            using var writer = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
            json.WriteTo(writer);
        });
    }

    private static IEnumerable<SafetensorsWriteTensor> FourBitTensors(string path, Linear4bit l)
    {
        FourBitQuantState state = l.QuantState;
        byte[] packed = l.PackedCodes();
        string weight = path + ".weight";
        yield return SafetensorsWriteTensor.FromBytes(weight, SafetensorsDType.U8, [packed.Length, 1], packed);
        if (l.NestedState() is { } nested)
        {
            yield return SafetensorsWriteTensor.FromBytes(BitsAndBytesKeys.FourBitPart(path, BitsAndBytesKeys.Absmax), SafetensorsDType.U8, [nested.Codes.Length], nested.Codes);
            yield return SafetensorsWriteTensor.FromSingles(BitsAndBytesKeys.FourBitPart(path, BitsAndBytesKeys.NestedAbsmax), [nested.Absmax.Length], nested.Absmax);
            yield return SafetensorsWriteTensor.FromSingles(BitsAndBytesKeys.FourBitPart(path, BitsAndBytesKeys.NestedQuantMap), [nested.Code.Length], nested.Code);
        }
        else
        {
            float[] absmax = l.AbsmaxValues()!;
            yield return SafetensorsWriteTensor.FromSingles(BitsAndBytesKeys.FourBitPart(path, BitsAndBytesKeys.Absmax), [absmax.Length], absmax);
        }
        yield return SafetensorsWriteTensor.FromSingles(BitsAndBytesKeys.FourBitPart(path, BitsAndBytesKeys.QuantMap), [16], FourBitCode.Table(l.QuantType).ToArray());
        byte[] json = state.ToJsonBytes();
        yield return SafetensorsWriteTensor.FromBytes(BitsAndBytesKeys.FourBitPart(path, FourBitQuantState.KeySuffix(l.QuantType)), SafetensorsDType.U8, [json.Length], json);
    }

    private static IEnumerable<SafetensorsWriteTensor> EightBitTensors(string path, Linear8bit l)
    {
        byte[] rows = MemoryMarshal.AsBytes(l.Rows().AsSpan()).ToArray();
        yield return SafetensorsWriteTensor.FromBytes(path + ".weight", SafetensorsDType.I8, [l.OutFeatures, l.InFeatures], rows);
        float[] scb = l.RowScales();
        yield return SafetensorsWriteTensor.FromSingles(BitsAndBytesKeys.EightBitPart(path, BitsAndBytesKeys.Scb), [scb.Length], scb);
        yield return SafetensorsWriteTensor.FromBytes(BitsAndBytesKeys.EightBitPart(path, BitsAndBytesKeys.WeightFormat), SafetensorsDType.U8, [], new byte[] { 0 });
    }

    // The checkpoint's name for a module path: as is, or with / without the base model's prefix.
    private static string ResolveModule(SafetensorsCheckpoint checkpoint, string path, string prefix)
    {
        if (checkpoint.Contains(path + ".weight")) return path;
        if (path.StartsWith(prefix + ".", StringComparison.Ordinal) && checkpoint.Contains(path[(prefix.Length + 1)..] + ".weight")) return path[(prefix.Length + 1)..];
        if (checkpoint.Contains(prefix + "." + path + ".weight")) return prefix + "." + path;
        throw new InvalidDataException($"Checkpoint '{checkpoint.Source}': tensor '{path}.weight' is missing (the quantization config quantizes '{path}').");
    }

    private static QuantizedLinear QuantizeFromCheckpoint(SafetensorsCheckpoint checkpoint, string key, nn.Module original, Tensor? bias,
        BitsAndBytesConfig quantization, ScalarType dtype, HashSet<string> handled)
    {
        string weightKey = key + ".weight";
        SafetensorsTensorInfo info = checkpoint.Info(weightKey);
        long[] expected = original is Conv1D c ? [c.InFeatures, c.OutFeatures] : [((Linear)original).out_features, ((Linear)original).in_features];
        if (!info.Shape.SequenceEqual(expected))
            throw new InvalidDataException($"Checkpoint '{checkpoint.Source}': tensor '{weightKey}' has shape {info.ShapeText}, the model expects [{string.Join(", ", expected)}].");
        if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F64))
            throw new InvalidDataException($"Checkpoint '{checkpoint.Source}': tensor '{weightKey}' is {info.DType.Name()}; a weight to quantize is floating point (is the folder already quantized without a quantization_config?).");
        using Tensor stored = TensorBridge.Read(checkpoint.FileOf(weightKey), weightKey, dtype);
        using Tensor weight = original is Conv1D ? stored.t().contiguous() : stored.alias();
        handled.Add(weightKey);
        try
        {
            return ModelQuantizer.Create(weight, bias, quantization);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Checkpoint '{checkpoint.Source}': tensor '{weightKey}' cannot be quantized: {e.Message}");
        }
    }

    private static QuantizedLinear ReadQuantized(SafetensorsCheckpoint checkpoint, string key, long outFeatures, long inFeatures, Tensor? bias,
        BitsAndBytesConfig quantization, ScalarType dtype, HashSet<string> handled)
    {
        var reader = new PartReader(checkpoint, handled);
        return quantization.LoadIn4Bit
            ? ReadFourBit(reader, key, outFeatures, inFeatures, bias, quantization)
            : ReadEightBit(reader, key, outFeatures, inFeatures, bias, dtype);
    }

    private static Linear4bit ReadFourBit(PartReader r, string key, long outFeatures, long inFeatures, Tensor? bias, BitsAndBytesConfig quantization)
    {
        string weightKey = key + ".weight";
        string nf4 = BitsAndBytesKeys.FourBitPart(key, FourBitQuantState.KeySuffix(FourBitType.Nf4));
        string fp4 = BitsAndBytesKeys.FourBitPart(key, FourBitQuantState.KeySuffix(FourBitType.Fp4));
        bool hasNf4 = r.Checkpoint.Contains(nf4), hasFp4 = r.Checkpoint.Contains(fp4);
        if (hasNf4 && hasFp4) throw r.Error($"'{weightKey}' has two quant states ('{nf4}' and '{fp4}'); it must have one");
        if (!hasNf4 && !hasFp4)
        {
            string statePrefix = weightKey + ".quant_state.";
            string? other = r.Checkpoint.Names.FirstOrDefault(n => n.StartsWith(statePrefix, StringComparison.Ordinal));
            throw r.Error(other is not null
                ? $"tensor '{other}' names an unknown quant type '{other[statePrefix.Length..].Replace("bitsandbytes__", "")}' (bitsandbytes knows nf4 and fp4)"
                : $"tensor '{BitsAndBytesKeys.FourBitPart(key, FourBitQuantState.KeySuffix(quantization.QuantType))}' is missing: the 4-bit weight '{weightKey}' has no quant state");
        }
        string stateKey = hasNf4 ? nf4 : fp4;
        FourBitQuantState state;
        try { state = FourBitQuantState.Parse(r.Bytes(stateKey, SafetensorsDType.U8, null), stateKey); }
        catch (InvalidDataException e) { throw r.Error(e.Message.TrimEnd('.')); }
        if (state.QuantType != (hasNf4 ? FourBitType.Nf4 : FourBitType.Fp4))
            throw r.Error($"tensor '{stateKey}' holds quant_type '{state.QuantType.Name()}', not the one its name says");
        if (state.QuantType != quantization.QuantType)
            throw r.Error($"tensor '{stateKey}' says quant_type '{state.QuantType.Name()}' but the quantization_config says '{quantization.QuantType.Name()}'");
        if (!state.Shape.SequenceEqual([outFeatures, inFeatures]))
            throw r.Error($"tensor '{stateKey}' gives shape [{string.Join(", ", state.Shape)}], the model's layer is [{outFeatures}, {inFeatures}]");
        if (state.Nested != quantization.UseDoubleQuant)
            throw r.Error($"tensor '{stateKey}' {(state.Nested ? "has" : "has no")} double quantization but the quantization_config says bnb_4bit_use_double_quant {(quantization.UseDoubleQuant ? "true" : "false")}");

        long n = state.ElementCount;
        long packedLength = FourBitCodec.PackedLength(n);
        byte[] packed = r.Bytes(weightKey, SafetensorsDType.U8, shape => shape.SequenceEqual([packedLength, 1L]) || shape.SequenceEqual([packedLength]),
            $"[{packedLength}, 1] (the packed codes of [{outFeatures}, {inFeatures}]; bnb_4bit_quant_storage uint8)");
        int blocks = FourBitCodec.BlockCount(n, state.BlockSize);
        string absmaxKey = BitsAndBytesKeys.FourBitPart(key, BitsAndBytesKeys.Absmax);
        string blockText = $"[{blocks}] ([{outFeatures}, {inFeatures}] in blocks of {state.BlockSize})";

        float[] map = r.Singles(BitsAndBytesKeys.FourBitPart(key, BitsAndBytesKeys.QuantMap), 16, "[16]");
        ReadOnlySpan<float> table = FourBitCode.Table(state.QuantType);
        for (int i = 0; i < 16; i++)
            if (MathF.Abs(map[i] - table[i]) > 1e-6f)
                throw r.Error($"tensor '{BitsAndBytesKeys.FourBitPart(key, BitsAndBytesKeys.QuantMap)}' is not bitsandbytes' {state.QuantType.Name()} table (value {i} is {map[i]}, expected {table[i]})");

        float[]? absmax = null;
        NestedAbsmax? nested = null;
        if (state.Nested)
        {
            byte[] codes = r.Bytes(absmaxKey, SafetensorsDType.U8, shape => shape.SequenceEqual([(long)blocks]), blockText + " uint8 (double-quantized)");
            int nestedBlocks = FourBitCodec.BlockCount(blocks, state.NestedBlockSize!.Value);
            float[] nestedAbsmax = r.Singles(BitsAndBytesKeys.FourBitPart(key, BitsAndBytesKeys.NestedAbsmax), nestedBlocks,
                $"[{nestedBlocks}] ({blocks} absmax values in nested blocks of {state.NestedBlockSize})");
            float[] nestedMap = r.Singles(BitsAndBytesKeys.FourBitPart(key, BitsAndBytesKeys.NestedQuantMap), 256, "[256]");
            nested = new NestedAbsmax(codes, nestedAbsmax, nestedMap, state.NestedBlockSize.Value, (float)state.NestedOffset!.Value);
        }
        else
        {
            foreach (string part in new[] { BitsAndBytesKeys.NestedAbsmax, BitsAndBytesKeys.NestedQuantMap })
                if (r.Checkpoint.Contains(BitsAndBytesKeys.FourBitPart(key, part)))
                    throw r.Error($"tensor '{BitsAndBytesKeys.FourBitPart(key, part)}' is present but the quant state '{stateKey}' has no double quantization");
            absmax = r.Singles(absmaxKey, blocks, blockText + " float32");
        }
        return Linear4bit.FromParts(state, packed, absmax, nested, bias, QuantDTypes.Parse(quantization.ComputeDType));
    }

    private static Linear8bit ReadEightBit(PartReader r, string key, long outFeatures, long inFeatures, Tensor? bias, ScalarType dtype)
    {
        string weightKey = key + ".weight";
        byte[] rows = r.Bytes(weightKey, SafetensorsDType.I8, shape => shape.SequenceEqual([outFeatures, inFeatures]), $"[{outFeatures}, {inFeatures}] int8");
        float[] scb = r.Singles(BitsAndBytesKeys.EightBitPart(key, BitsAndBytesKeys.Scb), (int)outFeatures, $"[{outFeatures}] (one scale per row)");
        string formatKey = BitsAndBytesKeys.EightBitPart(key, BitsAndBytesKeys.WeightFormat);
        if (r.Checkpoint.Contains(formatKey))
        {
            SafetensorsTensorInfo info = r.Checkpoint.Info(formatKey);
            if (info.ElementCount != 1 || info.DType is not (SafetensorsDType.U8 or SafetensorsDType.I64 or SafetensorsDType.I32))
                throw r.Error($"tensor '{formatKey}' is {info.DType.Name()} {info.ShapeText}; bitsandbytes writes one uint8 (0 = row)");
            long format = r.Checkpoint.FileOf(formatKey).ReadInt64s(formatKey)[0];
            if (format != 0)
                throw r.Error($"tensor '{formatKey}' is {format} ({(format switch { 1 => "col32", 2 => "col_turing", 3 => "col_ampere", _ => "unknown" })}), a GPU tile layout; only the row layout (0) is read");
            r.Handled.Add(formatKey);
        }
        sbyte[] cb = MemoryMarshal.Cast<byte, sbyte>(rows).ToArray();
        return Linear8bit.FromParts(outFeatures, inFeatures, cb, scb, bias, dtype);
    }

    // Reads one quantized layer's tensors, checking each dtype and shape, and records what it read.
    private sealed class PartReader(SafetensorsCheckpoint checkpoint, HashSet<string> handled)
    {
        public SafetensorsCheckpoint Checkpoint { get; } = checkpoint;

        public HashSet<string> Handled { get; } = handled;

        public InvalidDataException Error(string what) => new($"Checkpoint '{Checkpoint.Source}': {what}.");

        public byte[] Bytes(string name, SafetensorsDType dtype, Func<long[], bool>? shapeOk, string expected = "")
        {
            SafetensorsTensorInfo info = Require(name);
            if (info.DType != dtype || (shapeOk is not null && !shapeOk(info.Shape)))
                throw Error($"tensor '{name}' is {info.DType.Name()} {info.ShapeText}, expected {(expected.Length > 0 ? expected : dtype.Name())}");
            Handled.Add(name);
            return Checkpoint.FileOf(name).GetBytes(name).ToArray();
        }

        public float[] Singles(string name, int count, string expected)
        {
            SafetensorsTensorInfo info = Require(name);
            if (info.DType != SafetensorsDType.F32 || info.Shape.Length != 1 || info.Shape[0] != count)
                throw Error($"tensor '{name}' is {info.DType.Name()} {info.ShapeText}, expected F32 {expected}");
            Handled.Add(name);
            return Checkpoint.FileOf(name).ReadSingles(name);
        }

        private SafetensorsTensorInfo Require(string name) =>
            Checkpoint.Contains(name) ? Checkpoint.Info(name) : throw Error($"tensor '{name}' is missing");
    }
}
