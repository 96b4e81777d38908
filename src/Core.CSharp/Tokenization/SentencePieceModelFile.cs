using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lens.Tokenization;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (the ModelProto protobuf) turned into the tokenizer.json that
/// Hugging Face's LlamaConverter makes of it when a repository ships no tokenizer.json: BPE over the
/// pieces in id order, merges from every split of a piece into two pieces (ordered by the merged piece's
/// score, highest first), byte fallback, unk/bos/eos as special added tokens, the legacy normalizer
/// (Prepend '▁', Replace ' ' → '▁') or, with tokenizer_config's legacy=false, a Metaspace pre-tokenizer,
/// and BOS first when add_bos_token (default true). Only the Llama/Mistral kind of model is accepted:
/// a BPE model whose pieces are normal, byte, or the unk/bos/eos controls; anything else is refused.
/// </summary>
internal static class SentencePieceModelFile
{
    const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;
    const int ModelTypeBpe = 2;

    sealed record Piece(string Text, float Score, int Type);

    public static HubTokenizerJson Read(string path, JsonElement? tokenizerConfig)
    {
        TokenizerFileException.ThrowIfMissing(path);
        var pieces = new List<Piece>();
        int modelType = 1, unkId = 0, bosId = 1, eosId = 2;
        bool addDummyPrefix = true;
        try
        {
            var proto = new ProtoReader(File.ReadAllBytes(path));
            while (proto.Next(out int field, out int wire))
            {
                if (field == 1 && wire == 2) pieces.Add(ReadPiece(proto.Message()));
                else if (field == 2 && wire == 2)
                {
                    var trainer = proto.Message();
                    while (trainer.Next(out int f, out int w))
                    {
                        if (w != 0) { trainer.Skip(w); continue; }
                        long v = trainer.Varint();
                        if (f == 3) modelType = (int)v;
                        else if (f == 40) unkId = (int)v;
                        else if (f == 41) bosId = (int)v;
                        else if (f == 42) eosId = (int)v;
                    }
                }
                else if (field == 3 && wire == 2)
                {
                    var normalizer = proto.Message();
                    while (normalizer.Next(out int f, out int w))
                    {
                        if (f == 3 && w == 0) addDummyPrefix = normalizer.Varint() != 0;
                        else normalizer.Skip(w);
                    }
                }
                else proto.Skip(wire);
            }
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or InvalidDataException
            or DecoderFallbackException)
        {
            throw new TokenizerFileException(path, $"is not a SentencePiece model protobuf ({e.Message}).", e);
        }

        if (pieces.Count == 0)
            throw new TokenizerFileException(path, "holds no pieces; it is not a SentencePiece model.");
        if (modelType != ModelTypeBpe)
        {
            var kind = modelType switch
            {
                1 => "UNIGRAM",
                3 => "WORD",
                4 => "CHAR",
                _ => modelType.ToString(CultureInfo.InvariantCulture),
            };
            throw new TokenizerFileException(path,
                $"is a SentencePiece model of type {kind}; only BPE models (Llama 2, Mistral) are read.");
        }
        if (!addDummyPrefix)
            throw new TokenizerFileException(path,
                "has add_dummy_prefix=false (a Gemma-style model), which Lens does not convert; use the repository's " +
                "tokenizer.json.");
        foreach (var id in new[] { unkId, bosId, eosId })
            if (id < 0 || id >= pieces.Count)
                throw new TokenizerFileException(path,
                    $"names special piece id {id}, outside its {pieces.Count} pieces.");
        for (int i = 0; i < pieces.Count; i++)
        {
            var p = pieces[i];
            bool allowed = p.Type is Normal or Byte || (p.Type is Unknown && i == unkId)
                || (p.Type is Control && (i == bosId || i == eosId));
            if (allowed) continue;
            var type = p.Type switch
            {
                Unknown => "UNKNOWN",
                Control => "CONTROL",
                UserDefined => "USER_DEFINED",
                Unused => "UNUSED",
                _ => p.Type.ToString(CultureInfo.InvariantCulture),
            };
            throw new TokenizerFileException(path, $"piece {i} \"{p.Text}\" is of type {type}, which Hugging Face's "
                + "conversion adds as an added token Lens does not reproduce; use the repository's tokenizer.json.");
        }

        bool legacy = tokenizerConfig is { } tc && HubTokenizerJson.BoolOf(tc, "legacy") is { } l ? l : true;
        bool addPrefixSpace =
            tokenizerConfig is { } tc2 && HubTokenizerJson.BoolOf(tc2, "add_prefix_space") is { } a ? a : true;
        bool addBos = tokenizerConfig is { } tc3 && HubTokenizerJson.BoolOf(tc3, "add_bos_token") is { } b ? b : true;
        bool addEos = tokenizerConfig is { } tc4 && HubTokenizerJson.BoolOf(tc4, "add_eos_token") is { } e2 && e2;

        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] =
                new JsonArray(new[] { unkId, bosId, eosId }.Distinct().Order().Select(id => (JsonNode)new JsonObject
                {
                    ["id"] = id, ["content"] = pieces[id].Text, ["single_word"] = false, ["lstrip"] = false,
                    ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
                }).ToArray()),
            ["normalizer"] = legacy ? new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    (addPrefixSpace ? new[] { Json(new { type = "Prepend", prepend = "▁" }) } : Array.Empty<JsonNode>())
                        .Append(Json(new { type = "Replace", pattern = new { String = " " }, content = "▁" }))
                        .ToArray()),
            } : null,
            ["pre_tokenizer"] = legacy ? null : Json(new
            {
                type = "Metaspace", replacement = "▁", prepend_scheme = addPrefixSpace ? "first" : "never",
                split = false
            }),
            ["post_processor"] = Template(pieces, addBos ? bosId : null, addEos ? eosId : null),
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(new[]
                {
                    Json(new { type = "Replace", pattern = new { String = "▁" }, content = " " }),
                    Json(new { type = "ByteFallback" }), Json(new { type = "Fuse" }),
                }.Concat(addPrefixSpace
                    ? new[] { Json(new { type = "Strip", content = " ", start = 1, stop = 0 }) }
                    : Array.Empty<JsonNode>()).ToArray()),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = pieces[unkId].Text,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = true, ["byte_fallback"] = true, ["ignore_merges"] = false,
                ["vocab"] = Vocab(pieces),
                ["merges"] =
                    new JsonArray(Merges(pieces).Select(m => (JsonNode)new JsonArray(m.Left, m.Right)).ToArray()),
            },
        };
        return HubTokenizerJson.FromDocument(path, JsonDocument.Parse(root.ToJsonString()));
    }

    static JsonNode Json(object value) => JsonSerializer.SerializeToNode(value)!;

    static JsonObject Vocab(List<Piece> pieces)
    {
        var vocab = new JsonObject();
        for (int i = 0; i < pieces.Count; i++) vocab.TryAdd(pieces[i].Text, i);
        return vocab;
    }

    static JsonNode? Template(List<Piece> pieces, int? bos, int? eos)
    {
        if (bos is null && eos is null) return null;
        var single = new JsonArray();
        var specials = new JsonObject();
        void Special(int id)
        {
            single.Add(Json(new { SpecialToken = new { id = pieces[id].Text, type_id = 0 } }));
            specials[pieces[id].Text] =
                Json(new { id = pieces[id].Text, ids = new[] { id }, tokens = new[] { pieces[id].Text } });
        }
        if (bos is { } b) Special(b);
        single.Add(Json(new { Sequence = new { id = "A", type_id = 0 } }));
        if (eos is { } e) Special(e);
        return new JsonObject
        {
            ["type"] = "TemplateProcessing", ["single"] = single, ["pair"] = new JsonArray(),
            ["special_tokens"] = specials
        };
    }

    /// <summary>transformers' SentencePieceExtractor: every split of a piece into two pieces, by the merged piece's
    /// score (highest first, stable).</summary>
    static IEnumerable<(string Left, string Right)> Merges(List<Piece> pieces)
    {
        var idOf = new Dictionary<string, int>();
        for (int i = 0; i < pieces.Count; i++) idOf.TryAdd(pieces[i].Text, i);
        var merges = new List<(string Left, string Right, float Score)>();
        foreach (var p in pieces)
        {
            var local = new List<(string, string, float)>();
            var text = p.Text;
            for (int k = 1; k < text.Length; k++)
            {
                if (char.IsLowSurrogate(text[k])) continue;   // Python slices code points, not UTF-16 units
                string left = text[..k], right = text[k..];
                if (idOf.ContainsKey(left) && idOf.ContainsKey(right)) local.Add((left, right, p.Score));
            }
            merges.AddRange(local.OrderBy(m => idOf[m.Item1]).ThenBy(m => idOf[m.Item2]));
        }
        return merges.OrderByDescending(m => m.Score).Select(m => (m.Left, m.Right));
    }

    static Piece ReadPiece(ProtoReader r)
    {
        string text = "";
        float score = 0;
        int type = Normal;
        while (r.Next(out int f, out int w))
        {
            if (f == 1 && w == 2) text = r.String();
            else if (f == 2 && w == 5) score = r.Float();
            else if (f == 3 && w == 0) type = (int)r.Varint();
            else r.Skip(w);
        }
        return new Piece(text, score, type);
    }

    /// <summary>Just enough of the protobuf wire format to walk a ModelProto.</summary>
    sealed class ProtoReader(byte[] data, int start = 0, int end = -1)
    {
        int _at = start;
        readonly int _end = end < 0 ? data.Length : end;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_at >= _end) return false;
            long tag = Varint();
            field = (int)(tag >> 3);
            wire = (int)(tag & 7);
            return true;
        }

        public long Varint()
        {
            long value = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (shift > 63 || _at >= _end) throw new InvalidDataException("a varint runs past its message");
                byte b = data[_at++];
                value |= (long)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
        }

        int Length()
        {
            long n = Varint();
            if (n < 0 || _at + n > _end) throw new InvalidDataException("a length runs past its message");
            return (int)n;
        }

        public ProtoReader Message()
        {
            int n = Length();
            var m = new ProtoReader(data, _at, _at + n);
            _at += n;
            return m;
        }

        public string String()
        {
            int n = Length();
            string s = new UTF8Encoding(false, true).GetString(data, _at, n);
            _at += n;
            return s;
        }

        public float Float()
        {
            if (_at + 4 > _end) throw new InvalidDataException("a float runs past its message");
            float f = BitConverter.ToSingle(data, _at);
            _at += 4;
            return f;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _at += 8; break;
                case 2: int n = Length(); _at += n; break;
                case 5: _at += 4; break;
                default: throw new InvalidDataException($"wire type {wire} is not used by SentencePiece models");
            }
            if (_at > _end) throw new InvalidDataException("a field runs past its message");
        }
    }
}
