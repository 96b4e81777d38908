using Lens.IO;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `cache save PATH`: the activations of every hook point the filter picks (and the attention mask of padded texts) to
/// a safetensors file. On an input too large for one batch the rows run in the chunks the checks planned
/// (<see cref="BatchChunks"/>) and the file is written as they go: the first chunk gives every tensor's name, dtype and
/// shape (its rows counted for the whole input), so the header is written first and each chunk's rows go straight to
/// their offsets in each tensor. Chunk by chunk, not tensor by tensor: one forward per chunk and one chunk's
/// activations in memory, where a pass per hook would run every chunk once for each tensor. The file is byte for byte
/// the one a single batch writes, into a temporary file renamed at the end.
/// </summary>
internal static class CacheSave
{
    public static ExperimentState Run(CacheStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var input = state.RequireInput("cache");
        var filter = s.Filter is string glob ? HookedTransformer.NamesFilter(glob) : (_ => true);
        var metadata = new Dictionary<string, string>
        {
            ["model"] = state.ModelName, ["producer"] = "lens run", ["statement"] = state.Environment.TextOf(s),
        };
        var chunks = BatchChunks.Of(state, s).ToList();
        string[] names = [];
        AtomicFile.Write(state.Environment.WritePath(s.Path), stream =>
        {
            SafetensorsWriter? writer = null;
            foreach (var (_, rows) in chunks)
                Forward(state, s, rows, filter, tensors =>
                {
                    if (writer is null)
                    {
                        names = tensors.Select(t => t.Key).ToArray();
                        writer = new SafetensorsWriter(stream, Layout(tensors, rows.Batch, input.Batch, metadata));
                    }
                    foreach (var (name, t) in tensors) writer.Append(name, t);
                });
            writer!.Finish();
        });
        return state.WithResult(s,
            new FileValue(s.Path, names) { Title = $"activations of {Printer.Print(input.Source)}" });
    }

    /// <summary>Runs one chunk of rows and hands its activations (the cache's, then the attention mask) to
    /// <paramref name="use"/>.</summary>
    static void Forward(ExperimentState state, CacheStatement s, ExperimentInput rows, Func<string, bool> filter,
        Action<List<KeyValuePair<string, Tensor>>> use)
    {
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "cache", masked: true, rows);
        using var run = pass.Model.RunWithCache(pass.Tokens, ReturnType.Logits, filter,
            attentionMask: pass.AttentionMask, stopAtLayer: s.StopAtLayer);
        var tensors = run.Cache.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value)).ToList();
        // Padded texts: the mask says which positions are pads (their activations are TransformerLens's, and
        // meaningless).
        if (pass.AttentionMask is not null) tensors.Add(new("attention_mask", pass.AttentionMask));
        use(tensors);
    }

    /// <summary>The file's layout from the first chunk's tensors: each one's rows (its first dimension) counted for the
    /// whole input.</summary>
    static SafetensorsLayout Layout(List<KeyValuePair<string, Tensor>> first, int chunkRows, int batch,
        Dictionary<string, string> metadata)
    {
        if (chunkRows == batch)
            return SafetensorsLayout.Of(first.Select(t => (t.Key, t.Value.dtype, t.Value.shape)), metadata);
        foreach (var (name, t) in first)
            if (t.dim() == 0 || t.shape[0] != chunkRows)
                throw new NotSupportedException($"cache save cannot write '{name}' in chunks of rows: its shape " +
                    $"[{string.Join(", ", t.shape)}] does not start with the chunk's {chunkRows} rows");
        return SafetensorsLayout.Of(first.Select(t => (t.Key, t.Value.dtype, (long[])[batch, .. t.Value.shape[1..]])),
            metadata);
    }
}
