using Lens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Text in and out, as TransformerLens's to_tokens / to_str_tokens / to_string / to_single_token /
/// get_token_position: BOS is prepended by default (cfg.default_prepend_bos), batches are padded on the right.
/// </summary>
public sealed partial class HookedTransformer
{
    ITokenizer? _tokenizer;

    /// <summary>The model's tokenizer: set by the loader, or by the user; null for tokenizer-less models.</summary>
    public ITokenizer? Tokenizer
    {
        get => _tokenizer ??= DefaultTokenizer();
        set => _tokenizer = value;
    }

    ITokenizer? DefaultTokenizer() =>
        Config.TokenizerName is "gpt2" or "openai-community/gpt2" && Config.DVocab == 50257
            ? Gpt2Tokenizer.Default
            : null;

    ITokenizer RequireTokenizer() => Tokenizer ?? throw new InvalidOperationException(
        $"model '{Config.ModelName}' has no tokenizer: give token ids instead of text, or set model.Tokenizer");

    bool Bos(bool? prependBos) => prependBos ?? Config.DefaultPrependBos;

    /// <summary>int64 tokens [1, pos] of one text.</summary>
    public Tensor ToTokens(string text, bool? prependBos = null)
    {
        var ids = TokenizerOps.ToTokens(RequireTokenizer(), [text], Bos(prependBos));
        return tensor(ids, dtype: ScalarType.Int64, device: Device);
    }

    /// <summary>
    /// Several texts as one batch: int64 tokens [batch, pos] padded to the longest with the pad token on
    /// <paramref name="paddingSide"/>, and the attention mask to pass with them (Forward, Loss, RunWithCache,
    /// Generate: pad on the left to generate).
    /// </summary>
    public TokenBatch ToTokens(IReadOnlyList<string> texts, bool? prependBos = null, string paddingSide = "right")
    {
        var (ids, mask) = TokenizerOps.ToTokensAndMask(RequireTokenizer(), texts, Bos(prependBos), paddingSide);
        return new TokenBatch(tensor(ids, dtype: ScalarType.Int64, device: Device),
            tensor(mask, dtype: ScalarType.Int64, device: Device));
    }

    public string[] ToStrTokens(string text, bool? prependBos = null) =>
        TokenizerOps.ToStrTokens(RequireTokenizer(), text, Bos(prependBos));

    public string[] ToStrTokens(IReadOnlyList<int> ids) => TokenizerOps.ToStrTokens(RequireTokenizer(), ids);

    public string[] ToStrTokens(Tensor tokens) =>
        ToStrTokens((IReadOnlyList<int>)tokens.flatten().to(CPU).data<long>().Select(x => (int)x).ToArray());

    /// <summary>Decodes token ids to text (TransformerLens's to_string).</summary>
    public string ToText(IEnumerable<int> ids) => RequireTokenizer().Decode(ids);

    public string ToText(Tensor tokens) =>
        ToText((IEnumerable<int>)tokens.flatten().to(CPU).data<long>().Select(x => (int)x).ToArray());

    /// <summary>The id of a string that must be exactly one token.</summary>
    public int ToSingleToken(string text) => TokenizerOps.ToSingleToken(RequireTokenizer(), text);

    /// <summary>Position of a single token in a text (with BOS counted when prepended).</summary>
    public int GetTokenPosition(string singleToken, string text, bool? prependBos = null, string mode = "first") =>
        TokenizerOps.GetTokenPosition(RequireTokenizer(), singleToken, text, Bos(prependBos), mode);

    /// <summary>Logits of a text.</summary>
    public Tensor Forward(string text, bool? prependBos = null)
    {
        using var tokens = ToTokens(text, prependBos);
        return Forward(tokens);
    }

    public ModelOutput Forward(string text, ReturnType returnType, bool lossPerToken = false, bool? prependBos = null)
    {
        using var tokens = ToTokens(text, prependBos);
        return Forward(tokens, returnType, lossPerToken);
    }

    public CachedRun RunWithCache(string text, Func<string, bool>? namesFilter = null, bool? prependBos = null)
    {
        using var tokens = ToTokens(text, prependBos);
        return RunWithCache(tokens, namesFilter);
    }
}
