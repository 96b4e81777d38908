using Lens.Components;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

public sealed partial class HookedTransformer
{
    /// <summary>
    /// Continues each prompt by up to <paramref name="maxNewTokens"/> tokens (TransformerLens's generate on
    /// token input). Returns the prompt followed by the new tokens, int64 with the prompt's rank
    /// ([pos] or [batch, pos]); shorter when every sequence stopped at the end-of-sequence token. With the
    /// key-value cache (the default) each step runs only the new position, at its true absolute position.
    /// </summary>
    public Tensor Generate(Tensor tokens, int maxNewTokens, GenerationOptions? options = null)
    {
        options ??= new GenerationOptions();
        options.Validate();
        if (maxNewTokens < 0) throw new ArgumentException($"max_new_tokens must be >= 0 (got {maxNewTokens})");
        if (tokens.dtype != ScalarType.Int64) throw new ArgumentException($"tokens must be int64 token ids (got {tokens.dtype})");
        if (tokens.dim() is not (1 or 2) || tokens.shape[^1] == 0)
            throw new ArgumentException($"tokens must be a non-empty [pos] or [batch, pos] tensor (got shape [{string.Join(", ", tokens.shape)}])");
        long promptLength = tokens.shape[^1];
        if (promptLength + maxNewTokens > Config.NCtx)
            throw new ArgumentException($"prompt of {promptLength} tokens + {maxNewTokens} new tokens exceeds the model's context n_ctx = {Config.NCtx}");

        long? eos = options.StopAtEos ? options.EosTokenId ?? KnownEosTokenId(Config) : null;
        bool sampling = !(options.Greedy || options.Temperature == 0);
        using var generator = sampling ? new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()), Device) : null;
        using var noGrad = no_grad();
        using var cache = options.UseKvCache ? new KeyValueCache(Config.NLayers) : null;

        var sequence = (tokens.dim() == 1 ? tokens.unsqueeze(0) : tokens).to(Device).clone();
        var finished = zeros(sequence.shape[0], ScalarType.Bool, Device);
        try
        {
            for (int step = 0; step < maxNewTokens; step++)
            {
                using var scope = NewDisposeScope();
                // With a cache, the first step fills it with the prompt and later steps feed only the last token.
                var input = cache is null || step == 0 ? sequence : sequence.narrow(1, sequence.shape[1] - 1, 1);
                using var output = Forward(input, ReturnType.Logits, false, cache);
                var next = Sampling.SampleLogits(output.Logits!.select(1, -1), options, generator);
                if (eos is long e)
                {
                    next = where(finished, full_like(next, e), next);
                    var nowFinished = finished.logical_or(next == e).MoveToOuterDisposeScope();
                    finished.Dispose();
                    finished = nowFinished;
                }
                var longer = cat([sequence, next.unsqueeze(1)], 1).MoveToOuterDisposeScope();
                sequence.Dispose();
                sequence = longer;
                if (eos is not null && finished.all().item<bool>()) break;
            }
            if (tokens.dim() == 1)
            {
                var flat = sequence.squeeze(0);
                sequence.Dispose();
                sequence = flat;
            }
            return sequence;
        }
        catch { sequence.Dispose(); throw; }
        finally { finished.Dispose(); }
    }

    /// <summary>The end-of-sequence id of the model's tokenizer where Lens knows it without loading one.</summary>
    static long? KnownEosTokenId(HookedTransformerConfig config) =>
        config.TokenizerName is string t && (t == "gpt2" || t.StartsWith("gpt2-") || t.StartsWith("openai-community/gpt2")) ? 50256 : null;
}
