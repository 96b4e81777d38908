/// Every DSL statement on texts of different token lengths (padded on the right, with their attention mask):
/// each row's result is the result of that text alone (within 1e-5), combined over rows as the statement
/// combines rows; patching between texts whose real positions do not line up is refused.
module Lens.Tests.PaddedStatementTests

open System
open Expecto
open Lens
open Lens.Dsl.Runtime
open Lens.Tests.DslRuntimeTests

/// A random GPT-2-vocabulary model with the real GPT-2 tokenizer, saved once.
let modelDir =
    lazy (
        let cfg = HookedTransformerConfig(NLayers = 2, DModel = 32, NCtx = 48, DHead = 8, DVocab = 50257,
                                          DMlp = Nullable 64, ActFn = "gelu_new",
                                          TokenizerName = "gpt2", Seed = Nullable 3)
        use model = new HookedTransformer(cfg)
        let dir = Lens.Tests.CoreTests.tempDir ()
        model.Save dir
        dir)

let private clean = [| "The cat sat on the mat."; "A much longer sentence about a dog that ran across the field." |]
let private corrupted = [| "The dog sat on the mat."; "A much longer sentence about a cat that ran across the field." |]

let private quote (texts: string[]) = texts |> Array.map (sprintf "\"%s\"") |> String.concat ", "

/// Runs `input TEXTS` then the statements on the saved model.
let private runOn (texts: string[]) (statements: string) =
    run (sprintf "model %s\ninput %s\n%s\n" modelDir.Value (quote texts) statements)

let private close (what: string) (actual: float) (expected: float) =
    if abs (actual - expected) > 1e-5 * max 1.0 (abs expected) then
        failtestf "%s: %g, expected %g (each text alone)" what actual expected

let private tensorOf (r: ExperimentResult) =
    match r.Value with
    | :? TensorValue as v -> v
    | other -> failtestf "%s gave %s, not a tensor" r.Text other.Kind

let private summaryOf (r: ExperimentResult) (name: string) =
    r.Value.Summary |> Seq.find (fun kv -> kv.Key = name) |> fun kv -> kv.Value

/// Each text's real token count (BOS included).
let private lengths (texts: string[]) =
    texts |> Array.map (fun t -> (runOn [| t |] "show tokens" |> fun s -> s.Input.Positions))

[<Tests>]
let tests =
    testList "padded texts in every statement" [
        testCase "the texts differ in length, and row r of the clean and corrupted inputs alike" <| fun () ->
            let n = lengths clean
            Expect.notEqual n.[0] n.[1] "texts of different token lengths (so the batch is padded)"
            Expect.sequenceEqual (lengths corrupted) n "clean and corrupted rows have the same lengths"

        testCase "patch resid_pre (logit_diff) and heads (loss): each cell combines each text's own patched run"
        <| fun () ->
            let n = lengths clean
            let statement =
                sprintf "patch resid_pre from %s metric logit_diff \" the\" \" a\"\npatch heads from %s" (quote clean)
                    (quote clean)
            let batch = runOn corrupted statement
            let alone =
                [| for r in 0 .. 1 ->
                    runOn [| corrupted.[r] |]
                        (sprintf
                            "patch resid_pre from \"%s\" metric logit_diff \" the\" \" a\"\npatch heads from \"%s\""
                                clean.[r] clean.[r]) |]
            // logit_diff: the mean over rows; a position past a text's end leaves that text unpatched (its corrupted
            // value).
            let b = tensorOf (result "patch" batch)
            let layers, width = b.Shape.[0], b.Shape.[1]
            for l in 0 .. layers - 1 do
                for p in 0 .. width - 1 do
                    let expected =
                        [| for r in 0 .. 1 ->
                            let own = tensorOf (result "patch" alone.[r])
                            if p < n.[r] then own.Values.[l * n.[r] + p]
                            else summaryOf (result "patch" alone.[r]) "corrupted" |]
                            |> Array.average
                    close (sprintf "resid_pre L%d pos %d" l p) b.Values.[l * width + p] expected
            close "clean" (summaryOf (result "patch" batch) "clean")
                ([| for r in 0 .. 1 -> summaryOf (result "patch" alone.[r]) "clean" |] |> Array.average)
            // loss: the mean over every real pair of tokens, so each text weighs by its number of pairs.
            let pairs = n |> Array.map (fun k -> float (k - 1))
            let weighted (f: int -> float) = (Array.init 2 (fun r -> pairs.[r] * f r) |> Array.sum) / Array.sum pairs
            let bh = grid (results "patch" batch).[1]
            for l in 0 .. bh.Length - 1 do
                for h in 0 .. bh.[l].Length - 1 do
                    close (sprintf "heads L%dH%d" l h) bh.[l].[h]
                        (weighted (fun r -> (grid (results "patch" alone.[r]).[1]).[l].[h]))

        testCase "attribute patch resid_pre (prob): the batch gradient is the mean of each text's own" <| fun () ->
            let n = lengths clean
            let batch = runOn corrupted (sprintf "attribute patch resid_pre from %s metric prob \" the\"" (quote clean))
            let alone =
                [| for r in 0 .. 1 ->
                    runOn [| corrupted.[r] |]
                        (sprintf "attribute patch resid_pre from \"%s\" metric prob \" the\"" clean.[r]) |]
            let b = tensorOf (result "attribute" batch)
            let width = b.Shape.[1]
            for l in 0 .. b.Shape.[0] - 1 do
                for p in 0 .. width - 1 do
                    let expected =
                        [| for r in 0 .. 1 ->
                            if p < n.[r] then
                                (tensorOf (result "attribute" alone.[r])).Values.[l * n.[r] + p] else 0.0 |]
                                    |> Array.average
                    close (sprintf "L%d pos %d" l p) b.Values.[l * width + p] expected

        testCase "attribute, logit_lens, score, detect: each row read at its own last real token / over its own tokens"
        <| fun () ->
            let repeated = [| " red green red green"; " one two three four one two three four" |]
            let statements = "attribute\nlogit_lens\nscore prev_token\ndetect previous_token"
            let batch = runOn clean statements
            let alone = [| for r in 0 .. 1 -> runOn [| clean.[r] |] statements |]
            let mean2 (f: ExperimentState -> float) = (f alone.[0] + f alone.[1]) / 2.0
            for command in [ "attribute"; "score"; "detect" ] do
                let g = grid (result command batch)
                for l in 0 .. g.Length - 1 do
                    for h in 0 .. g.[l].Length - 1 do
                        close (sprintf "%s L%dH%d" command l h) g.[l].[h]
                            (mean2 (fun s -> (grid (result command s)).[l].[h]))
            for kv in (result "attribute" batch).Value.Summary do
                close ("attribute " + kv.Key) kv.Value (mean2 (fun s -> summaryOf (result "attribute" s) kv.Key))
            let table (s: ExperimentState) =
                match (result "logit_lens" s).Value with
                | :? TableValue as t -> t
                | other -> failtestf "logit_lens gave %s" other.Kind
            let lens = table batch
            for i in 0 .. lens.Rows.Length - 1 do
                Expect.equal lens.Rows.[i].[1] (table alone.[0]).Rows.[i].[1] "row 0's top token"
                close (sprintf "logit_lens %O row 0" lens.Rows.[i].[0]) (Convert.ToDouble lens.Rows.[i].[2])
                    (Convert.ToDouble (table alone.[0]).Rows.[i].[2])
                close (sprintf "logit_lens %O p(final)" lens.Rows.[i].[0]) (Convert.ToDouble lens.Rows.[i].[3])
                    (mean2 (fun s -> Convert.ToDouble (table s).Rows.[i].[3]))
            let scored = runOn repeated "score induction\nscore duplicate_token"
            let scoredAlone = [| for r in 0 .. 1 -> runOn [| repeated.[r] |] "score induction\nscore duplicate_token" |]
            for i in 0 .. 1 do
                let g = grid (results "score" scored).[i]
                for l in 0 .. g.Length - 1 do
                    for h in 0 .. g.[l].Length - 1 do
                        close (sprintf "score %d L%dH%d" i l h) g.[l].[h]
                            (((grid (results "score" scoredAlone.[0]).[i]).[l].[h]
                                + (grid (results "score" scoredAlone.[1]).[i]).[l].[h]) / 2.0)

        testCase "show pattern shows row 0's own tokens; print's statistics are over real entries only" <| fun () ->
            let n = lengths clean
            let statements = "show pattern L0H1\nprint blocks.0.hook_resid_post\nprint blocks.1.attn.hook_pattern"
            let batch = runOn clean statements
            let alone = [| for r in 0 .. 1 -> runOn [| clean.[r] |] statements |]
            let figure (s: ExperimentState) =
                match (result "show" s).Value with
                | :? FigureValue as f -> f.ConsoleText
                | other -> failtestf "show gave %s" other.Kind
            Expect.equal (figure batch) (figure alone.[0]) "row 0's pattern, over its own tokens"
            // real entries per text: pos × d_model (32) for the residual stream, head (8) × query × key for the pattern
            for i, entries in [ 0, (fun k -> 32 * k); 1, (fun k -> 8 * k * k) ] do
                let value (s: ExperimentState) =
                    match (results "print" s).[i].Value with
                    | :? ActivationValue as a -> a
                    | other -> failtestf "print gave %s" other.Kind
                let b, a = value batch, Array.map value alone
                let count r = float (entries n.[r])
                let total = count 0 + count 1
                close (sprintf "print %s mean" b.Hook) b.Mean ((count 0 * a.[0].Mean + count 1 * a.[1].Mean) / total)
                close (sprintf "print %s min" b.Hook) b.Min (min a.[0].Min a.[1].Min)
                close (sprintf "print %s max" b.Hook) b.Max (max a.[0].Max a.[1].Max)

        testCase "patching between texts whose real positions do not line up is refused at the check, naming why"
        <| fun () ->
            let text =
                sprintf "model %s\ninput %s\npatch resid_pre from \"The cat sat.\", \"%s\"\n" modelDir.Value
                    (quote corrupted) clean.[1]
            let errors = errorText text
            Expect.stringContains errors "test.lens:3:" "located at the patch"
            Expect.stringContains errors "position p of one text is not position p of the other" "says why"
    ]
