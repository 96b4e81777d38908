/// Stripe scores, the head detector's options and errors, and Lens's own random token generator.
module Lens.Tests.HeadScoreTests

open System
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests


/// A hook on blocks.{layer}.attn.hook_pattern that gives one head a hand-made pattern [query, key].
let forcePattern (head: int64) (pattern: torch.Tensor) : HookFunction =
    HookFunction(fun x _ ->
        let replaced = x.clone()
        use slot = replaced.select(1L, head)
        slot.copy_(pattern) |> ignore
        replaced)

/// A one-hot pattern: query q attends to key (target q).
let oneHot (pos: int) (target: int -> int) =
    let p = torch.zeros(int64 pos, int64 pos)
    for q in 0 .. pos - 1 do
        use cell = p.[int64 q, int64 (target q)]
        cell.fill_(1.0) |> ignore
    p

[<Tests>]
let tests =
    testList "head scores" [
        testCase "SplitMix64 gives the published reference outputs and unbiased bounded draws" <| fun () ->
            let rng = SplitMix64(0UL)
            Expect.equal (rng.NextUInt64()) 0xE220A8397B1DCDAFUL "first output for seed 0"
            Expect.equal (rng.NextUInt64()) 0x6E789E6AA1B965F4UL "second output"
            Expect.equal (rng.NextUInt64()) 0x06C45D188009454FUL "third output"
            let draws = SplitMix64(7UL)
            let counts = Array.zeroCreate 5
            for _ in 1 .. 5000 do
                let d = draws.NextBelow(5L)
                counts.[int d] <- counts.[int d] + 1
            Expect.isTrue (counts |> Array.forall (fun c -> c > 900 && c < 1100))
                (sprintf "roughly uniform over [0, 5): %A" counts)
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> SplitMix64(1UL).NextBelow(0L) |> ignore)
                "bound must be positive"

        testCase "repeated tokens: deterministic per seed, BOS then the block repeated, in range, documented draw order"
        <| fun () ->
            use a = RepeatedTokens.Generate(97L, 8, repeats = 2, batch = 3, seed = 42UL, bos = Nullable 96L)
            use b = RepeatedTokens.Generate(97L, 8, repeats = 2, batch = 3, seed = 42UL, bos = Nullable 96L)
            use c = RepeatedTokens.Generate(97L, 8, repeats = 2, batch = 3, seed = 43UL, bos = Nullable 96L)
            Expect.sequenceEqual a.Tokens.shape [| 3L; 17L |] "[batch, 1 + n·repeats]"
            Expect.sequenceEqual (longs a.Tokens) (longs b.Tokens) "same seed, same tokens"
            Expect.isFalse (longs a.Tokens = longs c.Tokens) "another seed, other tokens"
            let ids = longs a.Tokens
            for row in 0 .. 2 do
                let r = ids.[row * 17 .. row * 17 + 16]
                Expect.equal r.[0] 96L "BOS first"
                Expect.sequenceEqual r.[1..8] r.[9..16] "the block repeats"
                Expect.isTrue (r.[1..] |> Array.forall (fun t -> t >= 0L && t < 97L)) "tokens in [0, d_vocab)"
            use first = RepeatedTokens.Generate(97L, 2, seed = 0UL)
            let expected = [| int64 (0xE220A8397B1DCDAFUL % 97UL); int64 (0x6E789E6AA1B965F4UL % 97UL) |]
            Expect.sequenceEqual (longs first.Tokens) (Array.append expected expected)
                "draws are SplitMix64 outputs mod the range, in order"
            use ranged = RepeatedTokens.GenerateInRange(10L, 20L, 10, repeats = 3, seed = 5UL, distinct = true)
            let block = (longs ranged.Tokens).[0..9]
            Expect.equal (Array.distinct block).Length 10 "distinct draws"
            Expect.sequenceEqual (Array.sort block) [| 10L .. 19L |] "a permutation of the range"
            Expect.throwsT<ArgumentException> (fun () ->
                RepeatedTokens.GenerateInRange(0L, 5L, 6, distinct = true) |> ignore) "too many distinct tokens"
            Expect.throwsT<ArgumentException> (fun () -> RepeatedTokens.GenerateInRange(5L, 5L, 2) |> ignore)
                "empty range"

        testCase ("stripe scores of hand-set patterns: perfect induction n/(n+2), perfect previous-token and "
                  + "duplicate-token 1") <| fun () ->
            use model = (Oracle "gpt2like").Model()
            let n = 8
            let pos = 1 + 2 * n
            use tokens = RepeatedTokens.Generate(97L, n, seed = 1UL, bos = Nullable 0L, distinct = true)
            use induction = oneHot pos (fun q -> if q >= n + 1 then q - (n - 1) else q)
            use previous = oneHot pos (fun q -> max 0 (q - 1))
            use duplicate = oneHot pos (fun q -> if q >= n then q - n else q)
            let scoreWith (pattern: torch.Tensor) (score: unit -> HeadScoreTable) =
                use _ = model.Hooks(struct ("blocks.1.attn.hook_pattern", forcePattern 2L pattern))
                score ()
            use ind = scoreWith induction (fun () -> HeadScores.Induction(model, tokens))
            Expect.floatClose Accuracy.high ind.[1, 2] (float n / float (n + 2)) "perfect induction head scores n/(n+2)"
            Expect.sequenceEqual (longs ind.Tokens) (longs tokens.Tokens) "the scores record their tokens"
            Expect.equal (ind.Top(1).[0].Label) "L1H2" "the forced head ranks first"
            use prev = scoreWith previous (fun () -> HeadScores.PreviousToken(model, tokens))
            Expect.floatClose Accuracy.high prev.[1, 2] 1.0 "perfect previous-token head"
            use dup = scoreWith duplicate (fun () -> HeadScores.DuplicateToken(model, tokens))
            Expect.floatClose Accuracy.high dup.[1, 2] 1.0 "perfect duplicate-token head"
            use plain = HeadScores.Induction(model, tokens)
            Expect.sequenceEqual plain.Scores.shape [| 2L; 4L |] "[n_layers, n_heads]"
            Expect.isLessThan plain.[1, 2] 0.5 "without the hook this random head is no induction head"
            Expect.throwsT<ArgumentException> (fun () -> HeadScores.Stripe(model, tokens.Tokens, -pos) |> ignore)
                "a diagonal outside the pattern"

        testCase ("head detector: a user pattern equals the named one, a head subset, averaging, and a forced "
                  + "previous-token head") <| fun () ->
            use model = (Oracle "gpt2like").Model()
            use rt = RepeatedTokens.Generate(97L, 8, seed = 3UL, distinct = true)
            let tokens = rt.Tokens.select(0L, 0L)
            use named = HeadDetector.DetectHead(model, tokens, "induction_head")
            use pattern = HeadDetector.InductionPattern(tokens)
            use user = HeadDetector.DetectHead(model, tokens, pattern)
            expectClose 0.0 "user pattern = named pattern" user named
            use subset =
                HeadDetector.DetectHead(model, tokens, "induction_head", heads = [ struct (1, 2); struct (0, 1) ])
            Expect.equal (subset.[1L, 2L].item<float32>()) (named.[1L, 2L].item<float32>())
                "a chosen head keeps its score"
            Expect.equal (subset.[1L, 0L].item<float32>()) -1.0f "other heads score -1"
            use other = RepeatedTokens.Generate(97L, 8, seed = 4UL, distinct = true)
            use single2 = HeadDetector.DetectHead(model, other.Tokens.select(0L, 0L), "induction_head")
            use averaged = HeadDetector.DetectHead(model, [ tokens; other.Tokens.select(0L, 0L) ], "induction_head")
            use manual = (named + single2) / 2.0
            expectClose 1e-7 "several sequences average" averaged manual
            use previous = oneHot 16 (fun q -> max 0 (q - 1))
            use _ = model.Hooks(struct ("blocks.0.attn.hook_pattern", forcePattern 3L previous))
            use mul = HeadDetector.DetectHead(model, tokens, "previous_token_head")
            Expect.equal (mul.[0L, 3L].item<float32>()) 0.9375f
                "15 of the 16 rows attend to the previous token; row 0 attends to itself, outside D"
            use excluding = HeadDetector.DetectHead(model, tokens, "previous_token_head", excludeCurrentToken = true)
            Expect.equal (excluding.[0L, 3L].item<float32>()) 1.0f
                "excluding the current token leaves only previous-token attention"
            use abs = HeadDetector.DetectHead(model, tokens, "previous_token_head", errorMeasure = "abs")
            // only row 0 differs from D: mean|P − D|·16 = 1/16 = 0.0625, which rounds half-to-even to 0.062
            Expect.equal (abs.[0L, 3L].item<float32>()) 0.938f "abs measure with Python's round"

        testCase "head detector errors are clear" <| fun () ->
            use model = (Oracle "gpt2like").Model()
            use tokens = torch.arange(10L)
            Expect.throwsT<ArgumentException> (fun () -> HeadDetector.DetectHead(model, tokens, "copy_head") |> ignore)
                "unknown pattern name"
            Expect.throwsT<ArgumentException> (fun () ->
                HeadDetector.DetectHead(model, tokens, "induction_head", errorMeasure = "max") |> ignore)
                "unknown measure"
            use upper = torch.ones(10L, 10L)
            Expect.throwsT<ArgumentException> (fun () -> HeadDetector.DetectHead(model, tokens, upper) |> ignore)
                "not lower triangular"
            use small = torch.zeros(4L, 4L)
            Expect.throwsT<ArgumentException> (fun () -> HeadDetector.DetectHead(model, tokens, small) |> ignore)
                "wrong size"
            use long = torch.zeros(40L, dtype = torch.int64)
            Expect.throwsT<ArgumentException> (fun () ->
                HeadDetector.DetectHead(model, long, "previous_token_head") |> ignore) "longer than n_ctx"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () ->
                HeadDetector.DetectHead(model, tokens, "induction_head", heads = [ struct (5, 0) ]) |> ignore)
                "head out of range"
    ]

/// Text of space-separated ids; BOS is id 0.
type IdTokenizer() =
    interface Lens.Tokenization.ITokenizer with
        member _.Encode(text: string) =
            text.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                |> Array.map int :> Collections.Generic.IReadOnlyList<int>
        member _.Decode(ids: Collections.Generic.IEnumerable<int>) = String.Join(" ", ids)
        member _.IdToToken(id: int) = string id
        member _.TokenToId(piece: string) = match Int32.TryParse piece with | true, v -> Nullable v | _ -> Nullable()
        member _.VocabSize = 97
        member _.BosTokenId = Nullable 0
        member _.EosTokenId = Nullable()
        member _.PadTokenId = Nullable 0
        member _.PrependsBosByItself = false
        member _.Name = "ids"

[<Tests>]
let textTests =
    testList "head scores from text" [
        testCase "detect_head and logit attributions accept text through the model's tokenizer" <| fun () ->
            use model = (Oracle "gpt2like").Model()
            Expect.throwsT<InvalidOperationException> (fun () ->
                HeadDetector.DetectHead(model, "1 2 3", "induction_head") |> ignore) "no tokenizer: a clear error"
            model.Tokenizer <- IdTokenizer()
            let text = "76 38 69 25 76 38 69 25"
            use fromText = HeadDetector.DetectHead(model, text, "induction_head")
            use tokens = model.ToTokens(text)
            Expect.equal (tokens.shape.[1]) 9L "BOS prepended, as TransformerLens's to_tokens"
            use fromTokens = HeadDetector.DetectHead(model, tokens, "induction_head")
            expectClose 0.0 "text = its tokens" fromText fromTokens
            use averaged = HeadDetector.DetectHead(model, [ text; "5 6 5 6" ], "duplicate_token_head")
            Expect.sequenceEqual averaged.shape [| 2L; 4L |] "several texts average"
            use run = model.RunWithCache(tokens)
            use stack = run.Cache.DecomposeResid()
            use byText = run.Cache.LogitAttrs(stack.Stack, "7", "9")
            use byId = run.Cache.LogitAttrs(stack.Stack, 7L, Nullable 9L)
            expectClose 0.0 "a token given as text" byText byId
    ]
