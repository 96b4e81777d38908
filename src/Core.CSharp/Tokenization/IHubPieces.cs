namespace Lens.Tokenization;

/// <summary>A tokenizer read from Hugging Face files, which can name its pieces as those files spell them.</summary>
public interface IHubPieces
{
    /// <summary>Hugging Face's convert_ids_to_tokens for one id: the piece as the vocabulary spells it ("Ġcat", "▁cat",
    /// "&lt;0x0A&gt;").</summary>
    string Piece(int id);

    /// <summary>Whether the id is an added token marked special (what skip_special_tokens drops).</summary>
    bool IsSpecial(int id);
}
