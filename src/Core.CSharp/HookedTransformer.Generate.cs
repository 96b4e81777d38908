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
    /// A batch of prompts of different lengths is left-padded with its <paramref name="attentionMask"/>
    /// (<c>ToTokens(texts, paddingSide: "left")</c>): each row then generates as if it were alone, and stops
    /// at its own end-of-sequence token.
    /// </summary>
    public Tensor Generate(Tensor tokens, int maxNewTokens, GenerationOptions? options = null,
        Tensor? attentionMask = null)
    {
        options ??= new GenerationOptions();
        options.Validate();
        if (maxNewTokens < 0) throw new ArgumentException($"max_new_tokens must be >= 0 (got {maxNewTokens})");
        if (tokens.dtype != ScalarType.Int64)
            throw new ArgumentException($"tokens must be int64 token ids (got {tokens.dtype})");
        if (tokens.dim() is not (1 or 2) || tokens.shape[^1] == 0)
            throw new ArgumentException($"tokens must be a non-empty [pos] or [batch, pos] tensor (got shape " +
                $"[{string.Join(", ", tokens.shape)}])");
        long promptLength = tokens.shape[^1];
        if (promptLength + maxNewTokens > Config.NCtx)
            throw new ArgumentException($"prompt of {promptLength} tokens + {maxNewTokens} new tokens exceeds the " +
                $"model's context n_ctx = {Config.NCtx}");

        long? eos = options.StopAtEos ? options.EosTokenId ?? EosTokenId : null;
        bool sampling = !options.IsGreedy;
        using var generator =
            sampling ? new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()), Device) : null;
        using var noGrad = no_grad();
        using var cache = options.UseKvCache ? new KeyValueCache(Config.NLayers) : null;

        var sequence = (tokens.dim() == 1 ? tokens.unsqueeze(0) : tokens).to(Device).clone();
        var mask = attentionMask is null ? null : GenerationMask(attentionMask, sequence.shape);
        var finished = zeros(sequence.shape[0], ScalarType.Bool, Device);
        try
        {
            for (int step = 0; step < maxNewTokens; step++)
            {
                using var scope = NewDisposeScope();
                // With a cache, the first step fills it with the prompt and later steps feed only the last token.
                var input = cache is null || step == 0 ? sequence : sequence.narrow(1, sequence.shape[1] - 1, 1);
                // The cache keeps the mask of the positions it holds; without one the whole mask goes each step.
                var stepMask = mask is null
                    ? null
                    : cache is null || step == 0 ? mask : ones(sequence.shape[0], 1, ScalarType.Int64, Device);
                using var output = Forward(input, ReturnType.Logits, false, cache, stepMask);
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
                if (mask is not null)
                {
                    var longerMask =
                        cat([mask, ones(mask.shape[0], 1, ScalarType.Int64, Device)], 1).MoveToOuterDisposeScope();
                    mask.Dispose();
                    mask = longerMask;
                }
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
        finally { finished.Dispose(); mask?.Dispose(); }
    }

    /// <summary>
    /// The model's end-of-sequence id: its tokenizer's (GPT-2's &lt;|endoftext|&gt;, llama2.c's 2, Llama's
    /// &lt;/s&gt;, a hub tokenizer's eos), else GPT-2's 50256 for a tokenizer_name Lens knows is GPT-2's; null when
    /// unknown.
    /// </summary>
    public long? EosTokenId =>
        Tokenizer?.EosTokenId is int id ? id
        : Config.TokenizerName is string t
            && (t == "gpt2" || t.StartsWith("gpt2-", StringComparison.Ordinal)
            || t.StartsWith("openai-community/gpt2", StringComparison.Ordinal)) ? 50256 : null;

    /// <summary>The prompt's mask as int64 on the device, refused unless every row ends in a real token (left
    /// padding).</summary>
    Tensor GenerationMask(Tensor attentionMask, long[] shape)
    {
        using var scope = NewDisposeScope();
        var mask =
            (attentionMask.dim() == 1 ? attentionMask.unsqueeze(0) : attentionMask).to(ScalarType.Int64).to(Device);
        if (mask.dim() != 2 || mask.shape[0] != shape[0] || mask.shape[1] != shape[1])
            throw new ArgumentException($"attention_mask has shape [{string.Join(", ", attentionMask.shape)}] but " +
                $"the prompt is [{shape[0]}, {shape[1]}]");
        using var lastReal = mask.select(1, -1).eq(1).all();
        if (!lastReal.item<bool>())
            throw new ArgumentException("generation continues every row from its last position, so a batch of " +
                "prompts must be padded on the left (ToTokens(texts, paddingSide: \"left\"))");
        return mask.clone().MoveToOuterDisposeScope();
    }
}
