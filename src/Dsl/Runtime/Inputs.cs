using Lens.Analysis;

namespace Lens.Dsl.Runtime;

/// <summary>
/// Turns an <see cref="InputSource"/> into tokens for a model: texts through the model's tokenizer (BOS
/// first, as TransformerLens's to_tokens; several texts of different lengths padded on the right, with their attention
/// mask), token ids as given, a file's
/// non-empty lines as texts, an activation dataset's token_ids rows as stored, `repeat random` through the analysis
/// library's seeded
/// <see cref="RepeatedTokens"/> generator, and let-bound inputs as they were bound.
/// </summary>
public static class Inputs
{
    public static ExperimentInput Resolve(InputSource source, HookedTransformer model, ExperimentState state)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        return Tokenize(source, model, state);
    }

    static ExperimentInput Tokenize(InputSource source, HookedTransformer model, ExperimentState state) => source switch
    {
        TextInput s => FromTexts(source, s.Texts, model),
        TokenInput s => Describe(source, s.Rows.Select(r => r.Select(id => (long)id).ToArray()).ToArray(), model, null),
        FileInput s => FromTexts(source, ReadLines(state.Environment, s.Path), model),
        DatasetInput s => Describe(source, DatasetRows.TokenIds(state.Environment, s), model, null),
        RepeatRandomInput s => Repeated(source, s, model, s.Seed ?? state.Seed),
        InputName s => state.Bindings.TryGetValue(s.Name, out var b) && b is InputBinding bound
            ? bound.Input
            : throw new KeyNotFoundException($"'{s.Name}' is not a let-bound input"),
        _ => throw new ArgumentException($"unknown input source {source.GetType().Name}"),
    };

    /// <summary>
    /// The ids random tokens are drawn from, [0, d_vocab) less the BOS id, and the BOS that starts each
    /// row when the model prepends one (cfg.default_prepend_bos with a tokenizer that has a BOS token).
    /// </summary>
    static ExperimentInput Repeated(InputSource source, RepeatRandomInput s, HookedTransformer model, long seed)
    {
        // Sizes are checked before any token is drawn: the checks after resolving would come too late for
        // `repeat random 100000 x100000`.
        var bos = model.Config.DefaultPrependBos && model.Tokenizer?.BosTokenId is int ? 1L : 0L;
        var positions = bos + (long)s.Length * s.Repeats;
        if (positions > model.Config.NCtx)
            throw new ArgumentException(
                $"the input has {positions} tokens but the model's context holds {model.Config.NCtx} (n_ctx)");
        if (s.Batch > Limits.InputRows)
            throw new ArgumentException($"batch {s.Batch} is above the limit of {Limits.InputRows} rows");
        using var repeated = RepeatedTokens.ForModel(model, s.Length, s.Repeats, s.Batch, (ulong)seed);
        var flat = TensorData.Longs(repeated.Tokens);
        int width = (int)repeated.Tokens.shape[1];
        var ids = Enumerable.Range(0, s.Batch).Select(r => flat.AsSpan(r * width, width).ToArray()).ToArray();
        return Describe(source, ids, model, new RepeatLayout(s.Length, s.Repeats, repeated.Offset, (ulong)seed));
    }

    static ExperimentInput FromTexts(InputSource source, IReadOnlyList<string> texts, HookedTransformer model)
    {
        if (model.Tokenizer is null)
            throw new InvalidOperationException($"model '{model.Config.ModelName}' has no tokenizer: give token ids " +
                $"(`input tokens [...]`) instead of text");
        using var batch = model.ToTokens(texts);
        var flat = TensorData.Longs(batch.Tokens);
        var mask = TensorData.Longs(batch.AttentionMask);
        int width = (int)batch.Tokens.shape[1];
        var ids = Enumerable.Range(0, texts.Count).Select(r => flat.AsSpan(r * width, width).ToArray()).ToArray();
        var padded = mask.Any(m => m == 0);
        return Describe(source, ids, model, null) with
        {
            Mask = padded
                ? Enumerable.Range(0, texts.Count).Select(r => mask.AsSpan(r * width, width).ToArray()).ToArray()
                : null,
        };
    }

    static string[] ReadLines(ExperimentEnvironment environment, string asWritten)
    {
        var path = environment.ReadPath(asWritten);
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"input file '{asWritten}' not found (a relative path is relative to the experiment's folder)");
        var lines = Lens.IO.BoundedText.Read(path, Limits.InputFileBytes, "input file")
            .Split(["\r\n", "\n", "\r"], StringSplitOptions.None).Where(l => l.Trim().Length > 0).ToArray();
        if (lines.Length > Limits.InputRows)
            throw new ArgumentException(
                $"input file '{asWritten}' has {lines.Length} non-empty lines; the limit is {Limits.InputRows}");
        environment.RecordRead("input", path); // hashed only once it is known to be a bounded file
        return lines.Length > 0
            ? lines
            : throw new ArgumentException($"input file '{asWritten}' has no non-empty lines");
    }

    static ExperimentInput Describe(InputSource source, long[][] ids, HookedTransformer model, RepeatLayout? repeat) =>
        new(source, ids, ids.Select(row => Strings(row, model)).ToArray(), repeat);

    /// <summary>Display strings of token ids: the tokenizer's pieces, or the ids themselves for a model without a
    /// tokenizer.</summary>
    public static string[] Strings(long[] ids, HookedTransformer model)
    {
        var tokenizer = model.Tokenizer;
        if (tokenizer is null || ids.Any(id => id < 0 || id >= tokenizer.VocabSize))
            return ids.Select(id => id.ToString(CultureInfo.InvariantCulture)).ToArray();
        return model.ToStrTokens((IReadOnlyList<int>)ids.Select(id => (int)id).ToArray());
    }
}
