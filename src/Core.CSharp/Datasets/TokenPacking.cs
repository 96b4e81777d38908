using Lens.Tokenization;

namespace Lens.Datasets;

/// <summary>
/// TransformerLens's <c>tokenize_and_concatenate</c> (v3.5.1) as run by <c>datasets.map(batched=True)</c> in one
/// process: documents are taken 1000 at a time (datasets' default map batch size); within such a group each is
/// encoded without special tokens and joined with one EOS between documents; the joined ids are cut into rows of
/// <c>context − 1</c> ids (the remainder dropped; a group shorter than one row is padded with the pad token, or
/// EOS when there is none) and each row gets BOS in front.
/// </summary>
public static class TokenPacking
{
    public const int DocumentsPerGroup = 1000;

    public static IEnumerable<long[]> Rows(IEnumerable<string> documents, ITokenizer tokenizer, int context)
    {
        int eos = tokenizer.EosTokenId
            ?? throw new HarvestException(
            $"tokenizer {tokenizer.Name} has no EOS token, which tokenize_and_concatenate puts between documents");
        int bos = tokenizer.BosTokenId
            ?? throw new HarvestException($"tokenizer {tokenizer.Name} has no BOS token, which " +
            $"tokenize_and_concatenate puts at the start of each row");
        int pad = tokenizer.PadTokenId ?? eos;
        if (context < 2) throw new HarvestException($"--context {context}: a row holds BOS and at least one token");
        int seqLen = context - 1;
        var group = new List<string>(DocumentsPerGroup);
        foreach (var doc in documents)
        {
            group.Add(doc);
            if (group.Count == DocumentsPerGroup)
            {
                foreach (var row in Pack(group, tokenizer, seqLen, bos, eos, pad)) yield return row;
                group.Clear();
            }
        }
        if (group.Count > 0)
            foreach (var row in Pack(group, tokenizer, seqLen, bos, eos, pad)) yield return row;
    }

    static IEnumerable<long[]> Pack(List<string> group, ITokenizer tokenizer, int seqLen, int bos, int eos, int pad)
    {
        var ids = new List<long>();
        for (int i = 0; i < group.Count; i++)
        {
            foreach (var id in tokenizer.Encode(group[i])) ids.Add(id);
            if (i < group.Count - 1) ids.Add(eos);
        }
        if (ids.Count < seqLen)
        {
            while (ids.Count < seqLen) ids.Add(pad);
        }
        int rows = ids.Count / seqLen;
        for (int r = 0; r < rows; r++)
        {
            var row = new long[seqLen + 1];
            row[0] = bos;
            ids.CopyTo(r * seqLen, row, 1, seqLen);
            yield return row;
        }
    }
}
