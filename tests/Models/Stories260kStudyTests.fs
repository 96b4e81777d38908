/// The induction study on real trained weights: stories260K (5 layers × 8 heads, TinyStories), read
/// from outside the repo and loaded unprocessed (attention patterns do not depend on weight processing).
/// Part 1 is the classic experiment on repeated random tokens (InductionStudy); part 2 looks at what the
/// model does with a repeated name inside a story. The tests assert only what the measured numbers
/// justify with margin (docs/stories260k-study.md has the tables); each writes its tables to
/// tests/artifacts/.
module Lens.Tests.Stories260kStudyTests

open System
open System.IO
open System.Text
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Pretrained
open Lens.Tests.TestSupport

/// The checkpoint's own weights (Llama2cLoader.Load does no weight processing).
let load (dir: string) = Llama2cLoader.Load(Path.Combine(dir, "stories260K.bin"))

/// BOS of the llama2.c tokenizer (0 is <unk>, 2 is EOS).
let bos = 1L
let seeds = [ 0UL; 1UL; 2UL ]
let batch = 8

/// Token ranges: [3, 512) is every ordinary piece (256 byte pieces <0x00>..<0xFF>, 151 BPE merges,
/// 102 single characters), leaving out <unk>, BOS and EOS; [259, 512) only the merges and characters,
/// the pieces that stand for text in TinyStories (byte pieces occur only as byte fallback).
type Setting = { Low: int64; High: int64; N: int }
let allPieces50 = { Low = 3L; High = 512L; N = 50 }
let textPieces50 = { Low = 259L; High = 512L; N = 50 }
let allPieces20 = { Low = 3L; High = 512L; N = 20 }

let runStudy model (s: Setting) seed ablate =
    use tokens =
        RepeatedTokens.GenerateInRange(s.Low, s.High, s.N, repeats = 2, batch = batch, seed = seed, bos = Nullable bos)
    InductionStudy.Run(model, tokens, ablateHeads = ablate)

let heads = [ for l in 0 .. 4 do for h in 0 .. 7 -> l, h ]
let maxScore (table: HeadScoreTable) = heads |> List.map (fun (l, h) -> table.[l, h]) |> List.max
let topLabels k (table: HeadScoreTable) = table.Top(k) |> Seq.map (fun h -> h.Label) |> Set.ofSeq

let writeArtifact name (text: string) = File.WriteAllText(artifact name, text)

/// What part 1 asserts of every setting and seed: no induction head, strong previous-token heads,
/// a second copy that is at most a little easier than the first.
let checkNoInduction (s: Setting) (study: InductionStudy) (what: string) =
    // a perfect induction head scores n/(n+2) (0.96 at n = 50, 0.91 at n = 20); measured at most 0.022 and 0.074
    let bound = if s.N >= 50 then 0.1 else 0.15
    Expect.isLessThan (maxScore study.Induction) bound
        (sprintf "%s: no head attends to the token after the earlier occurrence" what)
    // measured L3H6 0.74–0.88 and L1H3 0.62–0.83; the next best at most 0.67 (L1H5) on [3, 512), 0.53 on [259, 512)
    Expect.isGreaterThanOrEqual study.PreviousToken.[3, 6] 0.65 (sprintf "%s: L3H6 is a previous-token head" what)
    Expect.isGreaterThanOrEqual study.PreviousToken.[1, 3] 0.5 (sprintf "%s: L1H3 is a previous-token head" what)
    // measured second/first 0.94–0.99: a model with induction would predict most of the second copy
    Expect.isGreaterThan (study.SecondRepeatLoss / study.FirstRepeatLoss) 0.9
        (sprintf "%s: the second copy is barely easier than the first" what)

/// Repetition helps no more than controls without it (averaged over seeds: single batches differ by up to 0.8 nats).
let checkControls (studies: InductionStudy list) (what: string) =
    let mean f = studies |> List.averageBy f
    let vsFresh = mean (fun s -> s.SecondRepeatLoss - s.FreshSecondRepeatLoss)
    let vsShuffled = mean (fun s -> s.SecondRepeatLoss - s.ShuffledSecondRepeatLoss)
    // measured means −0.06 to +0.21; an induction head would make the ordered copy several nats easier
    Expect.isGreaterThan vsFresh -0.75
        (sprintf
            "%s: the repeated copy is not easier than fresh random tokens at the same positions (mean difference %.3f)"
                what vsFresh)
    Expect.isGreaterThan vsShuffled -0.75
        (sprintf "%s: the repeated copy in order is not easier than shuffled (mean difference %.3f)" what vsShuffled)

/// A story with a made-up name mentioned twice; the name's pieces at each mention.
type Mention = { Name: string; Tokens: int64[]; First: int * int; Second: int * int }

/// Story templates: {0} is the name. The text between the mentions holds no name.
let templates =
    [ "Once upon a time, there was a little dog named{0}. The dog was very happy. One day,{0} went to the park."
      "One day, a girl named{0} found a big red ball. She showed it to her mom. Then{0} played with the ball all day."
      "There was a small cat called{0}. It liked to sleep in the sun. Every morning,{0} ate some milk." ]
let names = [ "Pib"; "Zorba"; "Kiko"; "Mavlo"; "Drell"; "Yuna"; "Tavik"; "Bexor"; "Quill"; "Nodo"; "Ferny"; "Lumo" ]

let tokenIds (model: HookedTransformer) (text: string) =
    use t = model.ToTokens(text)
    [| for i in 0L .. t.shape.[1] - 1L -> t.[0L, i].item<int64>() |]

/// Tokenises a template filled with a name and finds the name's pieces ([start, end) positions) at both mentions.
let mention (model: HookedTransformer) (template: string) (name: string) =
    let at = template.IndexOf("{0}")
    let second = template.IndexOf("{0}", at + 3)
    let fill (t: string) = t.Replace("{0}", " " + name)
    let before1 = template.Substring(0, at)
    let through1 = before1 + " " + name
    let before2 = fill (template.Substring(0, second))
    let through2 = before2 + " " + name
    let full = tokenIds model (fill template)
    let span a b = (tokenIds model a).Length, (tokenIds model b).Length
    let m = { Name = name; Tokens = full; First = span before1 through1; Second = span before2 through2 }
    Expect.sequenceEqual full.[.. snd m.Second - 1] (tokenIds model through2)
        (sprintf "%s: tokenisation of the story extends that of its start" name)
    Expect.equal (snd m.First - fst m.First) (snd m.Second - fst m.Second)
        (sprintf "%s: the name has the same pieces at both mentions" name)
    m

/// Rows padded with EOS (2) after the text; only positions inside each text are read.
let batchOf (mentions: Mention list) =
    let width = mentions |> List.map (fun m -> m.Tokens.Length) |> List.max
    let ids =
        mentions |> List.map (fun m -> Array.append m.Tokens (Array.create (width - m.Tokens.Length) 2L))
            |> Array.concat
    torch.tensor(ids, dtype = torch.int64).view(int64 mentions.Length, int64 width)

/// Mean per-token loss on piece k of the name, over the mentions that have it; pick chooses the mention.
let pieceLoss (loss: torch.Tensor) (mentions: Mention list) pick k =
    mentions
    |> List.mapi (fun r m ->
        let (a, b) = pick m
        if a + k < b then Some(float (loss.[int64 r, int64 (a + k - 1)].item<float32>())) else None)
    |> List.choose id |> List.average

/// Mean attention of a head from the query that predicts piece k of the second mention to piece k of the
/// first mention (for k ≥ 1 the token after the earlier occurrence of the current piece: the induction target).
let targetAttention (patterns: torch.Tensor[]) (mentions: Mention list) (layer, head) k =
    mentions
    |> List.mapi (fun r m ->
        let (a1, b1), (a2, _) = m.First, m.Second
        if a1 + k < b1 then
            Some(float (patterns.[layer].[int64 r, int64 head, int64 (a2 + k - 1), int64 (a1 + k)].item<float32>()))
        else None)
    |> List.choose id |> List.average

[<Tests>]
let tests =
    testList "stories260K induction study" [
        testWithExternalModel ("random tokens [3, 512), n = 50, 3 seeds: no induction head, repetition no help, no "
                               + "head's ablation costs the second copy over 6%; L4H3 matters most") <| fun dir ->
            use model = load dir
            let studies = [ for seed in seeds -> runStudy model allPieces50 seed true ]
            try
                let report = StringBuilder()
                for seed, study in List.zip seeds studies do
                    report.AppendLine(sprintf "## seed %d\n\n%s" seed (study.ToMarkdown(10))) |> ignore
                    let what = sprintf "seed %d" seed
                    checkNoInduction allPieces50 study what
                    Expect.equal (topLabels 2 study.PreviousToken) (set [ "L3H6"; "L1H3" ])
                        (what + ": the two strongest previous-token heads")
                    let ranked = study.RankedAblations()
                    // measured: largest ratio 1.022–1.025, always L4H3, which costs the first copy 1.5% too
                    Expect.isLessThan ranked.[0].Ratio 1.06 (what + ": no single head carries the second copy")
                    Expect.equal ranked.[0].Label "L4H3" (what + ": L4H3's ablation raises the second-copy loss most")
                    Expect.isGreaterThan (ranked.[0].FirstRepeatLoss / study.FirstRepeatLoss) 1.005
                        (what + ": ablating L4H3 costs the first copy too: it is no repetition-specific head")
                checkControls studies "[3, 512), n = 50"
                writeArtifact "stories260k-random-tokens.md" (report.ToString())
            finally
                for s in studies do s.Dispose()

        testWithExternalModel ("random tokens, other ranges and lengths ([259, 512) n = 50; [3, 512) n = 20): the same "
                               + "conclusions") <| fun dir ->
            use model = load dir
            let report = StringBuilder()
            for setting in [ textPieces50; allPieces20 ] do
                // head ablations only for seed 0 (one forward pass per head); scores and losses for every seed
                let studies = [ for seed in seeds -> runStudy model setting seed (seed = 0UL) ]
                try
                    for seed, study in List.zip seeds studies do
                        let what = sprintf "[%d, %d) n = %d seed %d" setting.Low setting.High setting.N seed
                        report.AppendLine(sprintf "## %s\n\n%s" what (study.ToMarkdown(10))) |> ignore
                        checkNoInduction setting study what
                        if study.Ablations.Count > 0 then
                            // measured at most 1.033 (L3H0 on [259, 512), L4H3 on [3, 512))
                            Expect.isLessThan (study.RankedAblations().[0].Ratio) 1.06
                                (what + ": no single head carries the second copy")
                    checkControls studies (sprintf "[%d, %d) n = %d" setting.Low setting.High setting.N)
                finally
                    for s in studies do s.Dispose()
            writeArtifact "stories260k-random-tokens-alternatives.md" (report.ToString())

        testWithExternalModel ("a name repeated in a story: its second piece is copied (L4H3 attends to it; ablating "
                               + "L4H3 undoes it), the third barely; L4H3 scores no induction on random tokens")
                               <| fun dir ->
            use model = load dir
            let report = StringBuilder()
            report.AppendLine(sprintf "Names: %s\n" (String.Join(", ", names))) |> ignore
            for template in templates do
                let mentions = names |> List.map (mention model template)
                use batchTokens = batchOf mentions
                use clean = model.Loss(batchTokens, true)
                use run =
                    model.RunWithCache(batchTokens, ReturnType.None,
                                       HookedTransformer.NamesFilter("blocks.*.attn.hook_pattern"))
                let patterns = [| for l in 0 .. 4 -> run.Cache.["pattern", l] |]
                let loss pick k = pieceLoss clean mentions pick k
                let first, second = (fun m -> m.First), (fun m -> m.Second)
                let attention k =
                    heads |> List.map (fun lh -> lh, targetAttention patterns mentions lh k)
                        |> List.sortByDescending snd
                let label (l, h) = sprintf "L%dH%d" l h
                let effects =
                    [ for lh in heads do
                        use o =
                            Ablation.Run(model, batchTokens, [ Ablation.Zero(AblationTarget.Head(fst lh, snd lh)) ],
                                         ReturnType.Loss, true)
                        yield lh, pieceLoss o.Loss mentions second 1 - loss second 1 ]
                    |> List.sortByDescending snd
                report.AppendLine(sprintf "### %s\n" (template.Replace("{0}", " NAME"))) |> ignore
                report.AppendLine(("| name piece | loss, 1st mention | loss, 2nd mention | heads attending from the "
                                   + "2nd mention to the same piece of the 1st |\n| --- | --- | --- | --- |")) |> ignore
                for k in 0 .. 2 do
                    let top =
                        attention k |> List.take 3 |> List.map (fun (lh, a) -> sprintf "%s %.2f" (label lh) a)
                            |> String.concat ", "
                    report.AppendLine(sprintf "| %d | %.3f | %.3f | %s |" k (loss first k) (loss second k) top)
                        |> ignore
                let ablations =
                    effects |> List.take 4 |> List.map (fun (lh, d) -> sprintf "%s +%.3f" (label lh) d)
                        |> String.concat ", "
                report.AppendLine(sprintf "\nZero-ablating one head, the rise of the piece-1 loss at the 2nd mention: \
                                           %s\n" ablations) |> ignore

                let what = template.Substring(0, 30)
                // measured piece 1: 3.81–5.67 at the first mention, 0.63–0.84 at the second
                Expect.isGreaterThan (loss first 1) 3.0 (what + ": piece 1 of a new name is hard to predict")
                Expect.isLessThan (loss second 1) 1.2 (what + ": piece 1 is copied at the second mention")
                // measured piece 2 at the second mention: 4.72–5.41
                Expect.isGreaterThan (loss second 2) 3.5 (what + ": piece 2 is mostly not copied")
                // measured: L4H3 0.56–0.60 at piece 1; L4H0, L4H1 0.50–0.54 at piece 2; L4H4 0.29–0.55 at piece 0 (the
                // next at most 0.07)
                let best k = attention k |> List.head
                Expect.equal (fst (best 1)) (4, 3) (what + ": L4H3 attends most to the induction target of piece 1")
                Expect.isGreaterThan (snd (best 1)) 0.45 (what + ": with about half its attention")
                Expect.equal (attention 2 |> List.take 2 |> List.map fst |> Set.ofList) (set [ (4, 0); (4, 1) ])
                    (what + ": L4H0 and L4H1 attend most to the induction target of piece 2")
                Expect.isGreaterThan (attention 2 |> List.item 1 |> snd) 0.4 (what + ": each with over 0.4")
                Expect.equal (fst (best 0)) (4, 4)
                    (what + ": L4H4 attends most from before the 2nd mention to the 1st mention's first piece")
                Expect.isGreaterThan (snd (best 0)) 0.2 (what + ": with over 0.2")
                // measured: ablating L4H3 adds 1.83–1.99 nats, the next head (L4H0) 0.44–0.48
                Expect.equal (fst effects.Head) (4, 3) (what + ": ablating L4H3 hurts the copied piece most")
                Expect.isGreaterThan (snd effects.Head) 1.2 (what + ": by over 1.2 nats")
            use tokens =
                RepeatedTokens.GenerateInRange(allPieces50.Low, allPieces50.High, allPieces50.N, repeats = 2,
                                               batch = batch, seed = 0UL, bos = Nullable bos)
            use scores = HeadScores.Induction(model, tokens)
            // measured 0.001: the head that copies names ignores repeated random tokens
            Expect.isLessThan scores.[4, 3] 0.05 "L4H3's stripe induction score on repeated random tokens"
            report.AppendLine(sprintf "L4H3's stripe induction score on repeated random tokens ([3, 512), n = 50, seed \
                                       0, batch 8): %.3f" scores.[4, 3]) |> ignore
            writeArtifact "stories260k-names.md" (report.ToString())
    ]
