using Lens.Tokenization;
using static TorchSharp.torch;

namespace Lens.Pretrained;

/// <summary>The seven int32 header fields of a llama2.c legacy (version 0) checkpoint.</summary>
public sealed record Llama2cHeader(int Dim, int HiddenDim, int NLayers, int NHeads, int NKvHeads, int VocabSize,
    int SeqLen)
{
    public bool SharedClassifier => VocabSize > 0;
    public int Vocab => Math.Abs(VocabSize);
    public int HeadSize => Dim / NHeads;
    public int KvDim => NKvHeads * HeadSize;

    public override string ToString() =>
        $"dim {Dim}, hidden_dim {HiddenDim}, n_layers {NLayers}, n_heads {NHeads}, n_kv_heads {NKvHeads}, " +
            $"vocab_size {VocabSize}, seq_len {SeqLen}";
}

/// <summary>
/// Andrej Karpathy's llama2.c checkpoints (<c>stories260K.bin</c>, <c>stories15M.bin</c>, ...: the
/// legacy "version 0" export) as a <see cref="HookedTransformer"/>: RMSNorm (eps 1e-5), rotary on the
/// whole head, grouped-query attention (query head h reads K/V head h / (n_heads / n_kv_heads), i.e.
/// repeat_interleave), SwiGLU (W_gate = w1ᵀ, W_in = w3ᵀ, W_out = w2ᵀ), no biases, and the classifier
/// tied to the token embedding when vocab_size is positive.
/// <para>
/// llama2.c rotates interleaved pairs (x[2j], x[2j+1]); TransformerLens's Llama convention (and HF's,
/// whose checkpoint converter permutes Meta's weights the same way) is rotate-half. The rows of wq and
/// wk are therefore permuted within each head to [0, 2, 4, ..., 1, 3, 5, ...] and the model uses
/// rotary_adjacent_pairs = false: q·k and the logits are identical, and W_Q, W_K, hook_q and hook_k
/// follow the same layout as any other Llama loaded from the hub.
/// </para>
/// </summary>
public static class Llama2cLoader
{
    const int HeaderBytes = 7 * sizeof(int);

    /// <summary>
    /// The model of a .bin checkpoint, with the checkpoint's own weights (no weight processing).
    /// The tokenizer is <paramref name="tokenizerPath"/>, else a llama2.c tokenizer file found beside
    /// the checkpoint (<c>tokenizer.bin</c>, or <c>tok{vocab}.bin</c>).
    /// </summary>
    public static HookedTransformer Load(string binPath, string? tokenizerPath = null) =>
        Load(binPath, tokenizerPath, new LoadOptions { ProcessWeights = false });

    public static HookedTransformer Load(string binPath, string? tokenizerPath, LoadOptions options)
    {
        var header = ReadHeader(binPath);
        var cfg = Config(header, Path.GetFileNameWithoutExtension(binPath));
        using var file = new FileStream(binPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var tokenizerFile = Llama2cTokenizerFile(binPath, header, tokenizerPath);
        var tokenizer = tokenizerFile is null ? null : Llama2cTokenizer.Load(tokenizerFile, header.Vocab);
        var model = HookedTransformer.FromConverted(cfg, Weights(file, header, binPath), binPath, options);
        model.Tokenizer = tokenizer;  // BOS = 1, prepended by default as llama2.c's run.c does
        model.Config.TokenizerPrependsBos = tokenizer?.PrependsBosByItself;
        return model;
    }

    /// <summary>Reads and checks the header against the file size.</summary>
    public static Llama2cHeader ReadHeader(string binPath)
    {
        if (!File.Exists(binPath)) throw new CheckpointException($"llama2.c checkpoint not found: {binPath}");
        long length = new FileInfo(binPath).Length;
        if (length < HeaderBytes)
            throw new CheckpointException($"{binPath}: {length} bytes is too short for a llama2.c header (28 bytes)");
        var raw = new byte[HeaderBytes];
        using (var fs = File.OpenRead(binPath)) fs.ReadExactly(raw);
        int F(int i) => BitConverter.ToInt32(raw, i * 4);
        var h = new Llama2cHeader(F(0), F(1), F(2), F(3), F(4), F(5), F(6));
        if (h.Dim <= 0 || h.HiddenDim <= 0 || h.NLayers <= 0 || h.NHeads <= 0 || h.NKvHeads <= 0 || h.VocabSize == 0
            || h.SeqLen <= 0
            || h.Dim % h.NHeads != 0 || h.NHeads % h.NKvHeads != 0 || h.HeadSize % 2 != 0)
            throw new CheckpointException($"{binPath}: not a llama2.c checkpoint (header: {h}); only the legacy " +
                $"version-0 export (no magic number) is read");
        long expected = HeaderBytes + 4L * Layout(h).Total;
        if (length != expected)
            throw new CheckpointException($"{binPath}: {length} bytes, but a llama2.c checkpoint with {h} " +
                $"has {expected} bytes (truncated, or a different export version?)");
        return h;
    }

    /// <summary>The TransformerLens config of a llama2.c model.</summary>
    public static HookedTransformerConfig Config(Llama2cHeader h, string modelName) => new HookedTransformerConfig
    {
        DModel = h.Dim,
        DHead = h.HeadSize,
        NHeads = h.NHeads,
        NKeyValueHeads = h.NKvHeads != h.NHeads ? h.NKvHeads : null,
        DMlp = h.HiddenDim,
        NLayers = h.NLayers,
        NCtx = h.SeqLen,
        DVocab = h.Vocab,
        Eps = 1e-5,                       // hard-coded in run.c (the header does not store it)
        ActFn = "silu",
        NormalizationType = "RMS",
        FinalRms = true,
        PositionalEmbeddingType = "rotary",
        RotaryDim = h.HeadSize,
        RotaryBase = 10000,
        RotaryAdjacentPairs = false,      // rows of wq/wk are permuted to rotate-half order (see the class remarks)
        GatedMlp = true,
        TieWordEmbeddings = h.SharedClassifier,
        OriginalArchitecture = "llama2.c",
        ModelName = modelName,
        InitWeights = false,
    }.Complete();

    /// <summary>Float offsets of each stored tensor group (all layers of one kind are contiguous).</summary>
    sealed record Offsets(long Embedding, long RmsAtt, long Wq, long Wk, long Wv, long Wo, long RmsFfn, long W1,
        long W2, long W3, long RmsFinal, long Classifier, long Total);

    static Offsets Layout(Llama2cHeader h)
    {
        long dim = h.Dim, L = h.NLayers, kv = h.KvDim, hid = h.HiddenDim, V = h.Vocab;
        long o = 0;
        long Next(long n) { var at = o; o += n; return at; }
        var emb = Next(V * dim);
        var rmsAtt = Next(L * dim);
        var wq = Next(L * dim * dim);
        var wk = Next(L * kv * dim);
        var wv = Next(L * kv * dim);
        var wo = Next(L * dim * dim);
        var rmsFfn = Next(L * dim);
        var w1 = Next(L * hid * dim);
        var w2 = Next(L * dim * hid);
        var w3 = Next(L * hid * dim);
        var rmsFinal = Next(dim);
        Next((long)h.SeqLen * h.HeadSize);   // freq_cis_real and freq_cis_imag (unused: rotary is computed)
        var classifier = h.SharedClassifier ? emb : Next(V * dim);
        return new Offsets(emb, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, classifier, o);
    }

    static IEnumerable<ConvertedWeight> Weights(FileStream file, Llama2cHeader h, string source)
    {
        var at = Layout(h);
        int dim = h.Dim, hid = h.HiddenDim, kv = h.KvDim, hs = h.HeadSize;
        bool gqa = h.NKvHeads != h.NHeads;
        string g = gqa ? "_" : "";
        Tensor Read(long offset, params long[] shape) => ReadFloats(file, offset, shape, source);
        ConvertedWeight W(string name, Func<Tensor> read) => new(name, dtype =>
        {
            using var scope = NewDisposeScope();
            return read().to(dtype).MoveToOuterDisposeScope();
        });

        yield return W("embed.W_E", () => Read(at.Embedding, h.Vocab, dim));
        for (int l = 0; l < h.NLayers; l++)
        {
            string b = $"blocks.{l}.";
            long layer = l;
            yield return W(b + "ln1.w", () => Read(at.RmsAtt + layer * dim, dim));
            yield return W(b + "attn.W_Q",
                () => Heads(RotateHalfOrder(Read(at.Wq + layer * dim * dim, dim, dim), h.NHeads, hs), h.NHeads));
            yield return W($"{b}attn.{g}W_K",
                () => Heads(RotateHalfOrder(Read(at.Wk + layer * kv * dim, kv, dim), h.NKvHeads, hs), h.NKvHeads));
            yield return W($"{b}attn.{g}W_V", () => Heads(Read(at.Wv + layer * kv * dim, kv, dim), h.NKvHeads));
            yield return W(b + "attn.W_O",
                () => Read(at.Wo + layer * dim * dim, dim, dim).view(dim, h.NHeads, hs).permute(1, 2, 0));
            yield return W(b + "ln2.w", () => Read(at.RmsFfn + layer * dim, dim));
            yield return W(b + "mlp.W_gate", () => Read(at.W1 + layer * hid * dim, hid, dim).t());
            yield return W(b + "mlp.W_out", () => Read(at.W2 + layer * dim * hid, dim, hid).t());
            yield return W(b + "mlp.W_in", () => Read(at.W3 + layer * hid * dim, hid, dim).t());
        }
        yield return W("ln_final.w", () => Read(at.RmsFinal, dim));
        yield return W("unembed.W_U", () => Read(at.Classifier, h.Vocab, dim).t());
    }

    /// <summary>nn.Linear [heads·hs, dim] → [heads, dim, hs].</summary>
    static Tensor Heads(Tensor w, int heads) => w.view(heads, -1, w.shape[1]).permute(0, 2, 1);

    /// <summary>Within each head, output rows [0, 1, 2, 3, ...] → [0, 2, 4, ..., 1, 3, 5, ...]: interleaved pairs
    /// become rotate-half halves.</summary>
    static Tensor RotateHalfOrder(Tensor w, int heads, int headSize)
    {
        var order = cat([arange(0, headSize, 2), arange(1, headSize, 2)]);
        return w.view(heads, headSize, w.shape[1]).index_select(1, order).view(heads * headSize, w.shape[1]);
    }

    static Tensor ReadFloats(FileStream file, long offsetFloats, long[] shape, string source)
    {
        var t = empty(shape, dtype: ScalarType.Float32);
        file.Seek(HeaderBytes + 4 * offsetFloats, SeekOrigin.Begin);
        try { file.ReadExactly(t.bytes); }
        catch (EndOfStreamException)
        {
            t.Dispose();
            throw new CheckpointException($"{source}: file ends inside a tensor (truncated?)");
        }
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("llama2.c checkpoints are little-endian; this machine is not");
        return t;
    }

    /// <summary>The tokenizer file: the one given, else tokenizer.bin or tok{vocab}.bin beside the checkpoint; null if
    /// none.</summary>
    public static string? Llama2cTokenizerFile(string binPath, Llama2cHeader header, string? tokenizerPath)
    {
        if (tokenizerPath is not null)
            return File.Exists(tokenizerPath)
                ? tokenizerPath
                : throw new CheckpointException($"llama2.c tokenizer not found: {tokenizerPath}");
        var dir = Path.GetDirectoryName(Path.GetFullPath(binPath))!;
        return new[] { $"tok{header.Vocab}.bin", "tokenizer.bin" }.Select(n => Path.Combine(dir, n))
            .FirstOrDefault(File.Exists);
    }
}
