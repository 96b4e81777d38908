/// stories260K (a real trained llama2.c checkpoint, read from outside the repo): greedy continuations
/// and logits as llama2.c's run.c computes them (expected.json beside the model).
module Lens.Tests.Llama2cTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open Lens
open Lens.Pretrained
open Lens.Tests.TestSupport
open Lens.Tests.WeightProcessingTests

type Case =
    { Prompt: string
      PromptIds: int64[]
      Greedy: int64[]
      GreedyText: string
      EchoText: string
      PromptTop5: (int64 * float)[][]     // positions 0 .. len-2
      StepTop5: (int64 * float)[][]       // one per generated step, at position len-1+step
      FirstStepLogits: float[] }

let readCases (dir: string) =
    use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")))
    let ints (e: JsonElement) = [| for x in e.EnumerateArray() -> x.GetInt64() |]
    let top5 (e: JsonElement) =
        [| for p in e.EnumerateArray() ->
            [| for pair in p.GetProperty("top5").EnumerateArray() -> pair.[0].GetInt64(), pair.[1].GetDouble() |] |]
    [ for c in doc.RootElement.GetProperty("cases").EnumerateArray() ->
        { Prompt = c.GetProperty("prompt").GetString()
          PromptIds = ints (c.GetProperty "prompt_token_ids")
          Greedy = ints (c.GetProperty "greedy_token_ids")
          GreedyText = c.GetProperty("greedy_text").GetString()
          EchoText = c.GetProperty("prompt_echo_plus_greedy_text_unfiltered").GetString()
          PromptTop5 = top5 (c.GetProperty "top5_at_prompt_positions")
          StepTop5 = top5 (c.GetProperty "top5_per_generated_step")
          FirstStepLogits =
              [| for x in c.GetProperty("all_logits_at_first_generated_step").EnumerateArray() -> x.GetDouble() |] } ]

/// Largest |logit - expected| over a top-5 list at one position; fails when Lens's top-5 ids differ.
let checkTop5 (what: string) (logits: torch.Tensor) (expected: (int64 * float)[]) =
    let struct (values, ids) = logits.topk(5)
    use _v = values
    use _i = ids
    let got = [| for i in 0L..4L -> ids.[i].item<int64>() |]
    Expect.sequenceEqual got (Array.map fst expected) (what + ": top-5 token ids")
    expected |> Array.map (fun (id, v) -> abs (float (logits.[id].item<float32>()) - v)) |> Array.max

/// A plain greedy loop: run the model on the whole growing sequence, take the argmax of the last position.
let greedy (model: HookedTransformer) (case: Case) (onStep: int -> torch.Tensor -> unit) =
    let tokens = ResizeArray<int64>(case.PromptIds)
    for step in 0 .. case.Greedy.Length - 1 do
        use input = torch.tensor(tokens.ToArray(), dtype = torch.int64).unsqueeze(0L)
        use logits = model.Forward(input)
        use row = logits.[0L].to_type(torch.float32)
        onStep step row
        use next = row.[-1L].argmax()
        tokens.Add(next.item<int64>())
    tokens.GetRange(case.PromptIds.Length, case.Greedy.Length).ToArray()

let bin dir = Path.Combine(dir, "stories260K.bin")

[<Tests>]
let tests =
    testList "llama2.c checkpoints" [
        testWithExternalModel ("stories260K: header and config (RMS, rotary rotate-half, GQA 8/4, SwiGLU, tied "
                               + "classifier, eps 1e-5)") <| fun dir ->
            let h = Llama2cLoader.ReadHeader(bin dir)
            Expect.equal h (Llama2cHeader(64, 172, 5, 8, 4, 512, 512)) "header"
            use model = Llama2cLoader.Load(bin dir)
            let c = model.Config
            Expect.equal (c.DModel, c.DMlp.Value, c.NLayers, c.NHeads, c.KvHeads, c.DVocab, c.NCtx, c.DHead)
                (64, 172, 5, 8, 4, 512, 512, 8) "sizes"
            Expect.equal (c.NormalizationType, c.ActFn, c.PositionalEmbeddingType, c.Eps)
                ("RMS", "silu", "rotary", 1e-5) "kinds"
            Expect.isTrue (c.GatedMlp && c.FinalRms && not c.RotaryAdjacentPairs) "gated, final RMS, rotate-half"
            use wu = model.W_U
            use we = model.W_E
            expectClose 0.0 "tied classifier: W_U = W_Eᵀ" wu (we.t())

        testWithExternalModel ("stories260K: greedy continuations exactly as run.c; top-5 logits at every position and "
                               + "all 512 at the first step within 1e-4") <| fun dir ->
            use model = Llama2cLoader.Load(bin dir)
            let mutable worstTop5 = 0.0
            let mutable worstAll = 0.0
            for case in readCases dir do
                let label = sprintf "prompt %A" case.Prompt
                let generated =
                    greedy model case (fun step logits ->
                        let last = int64 case.PromptIds.Length - 1L + int64 step
                        if step = 0 then
                            for pos in 0 .. case.PromptTop5.Length - 1 do
                                worstTop5 <-
                                    max worstTop5
                                        (checkTop5 (sprintf "%s pos %d" label pos) logits.[int64 pos]
                                            case.PromptTop5.[pos])
                            use expected = torch.tensor(case.FirstStepLogits, dtype = torch.float64)
                            worstAll <- max worstAll (maxAbsDiff logits.[last] expected)
                            expectClose 1e-4 (label + " all 512 logits at the first generated position") logits.[last]
                                expected
                        worstTop5 <-
                            max worstTop5
                                (checkTop5 (sprintf "%s step %d" label step) logits.[last] case.StepTop5.[step]))
                Expect.sequenceEqual generated case.Greedy (label + ": greedy tokens")
            printfn "[parity] stories260K top-5 logits (all positions, 5 prompts): max |diff| = %.3g" worstTop5
            printfn "[parity] stories260K all 512 logits at the first generated position: max |diff| = %.3g" worstAll
            Expect.isLessThan worstTop5 1e-4 "top-5 logits within 1e-4"

        testWithExternalModel ("stories260K: the tok512.bin beside the checkpoint is the model's tokenizer (BOS = 1 "
                               + "prepended; prompts encode to run.c's ids)") <| fun dir ->
            use model = Llama2cLoader.Load(bin dir)
            Expect.isNotNull model.Tokenizer "tokenizer found beside the .bin"
            Expect.equal model.Tokenizer.BosTokenId (Nullable 1) "BOS = 1"
            Expect.equal model.EosTokenId (Nullable 2L) "generation stops at llama2.c's EOS = 2"
            for case in readCases dir do
                use tokens = model.ToTokens(case.Prompt)
                Expect.sequenceEqual (tokens.data<int64>().ToArray()) case.PromptIds
                    (sprintf "%A encodes as run.c" case.Prompt)
                let ids = Array.append case.PromptIds case.Greedy |> Array.map int
                Expect.equal (model.ToText(ids :> seq<int>)) case.EchoText
                    (sprintf "%A: prompt + greedy tokens decode as run.c" case.Prompt)
            use explicitTok = Llama2cLoader.Load(bin dir, Path.Combine(dir, "tok512.bin"))
            Expect.equal explicitTok.Tokenizer.VocabSize 512 "an explicit tokenizer path works too"

        testWithExternalModel ("stories260K: weight processing (RMSPre) keeps the log-probabilities; ModelLoader "
                               + "resolves the .bin path") <| fun dir ->
            use raw = Llama2cLoader.Load(bin dir)
            use processed = HookedTransformer.FromPretrained(bin dir)
            Expect.equal processed.Config.NormalizationType "RMSPre" "processed by default through FromPretrained"
            use tokens = torch.tensor([| 1L; 403L; 407L; 261L; 378L |]).unsqueeze(0L)
            use a = raw.Forward(tokens)
            use b = processed.Forward(tokens)
            use la = logSoftmax a
            use lb = logSoftmax b
            closeAndMeasured 1e-5 "stories260K processed vs unprocessed log-probs" lb la
            use viaLoader = ModelLoader.Load(bin dir, LoadOptions(ProcessWeights = false))
            use c = viaLoader.Forward(tokens)
            expectClose 0.0 "ModelLoader.Load(.bin) = Llama2cLoader.Load" c a

        testWithExternalModel "llama2.c: truncated or foreign files are refused with the reason" <| fun dir ->
            let tmp =
                Path.Combine(Path.GetTempPath(),
                             sprintf "lens-l2c-%s.bin" (Guid.NewGuid().ToString("N").Substring(0, 8)))
            try
                let bytes = File.ReadAllBytes(bin dir)
                File.WriteAllBytes(tmp, bytes.[.. bytes.Length - 101])
                let m1 = messageOf<CheckpointException> (fun () -> Llama2cLoader.Load(tmp) |> ignore)
                Expect.stringContains m1 "1056540" "says how long the file should be"
                File.WriteAllBytes(tmp, Array.create 64 0uy)
                let m2 = messageOf<CheckpointException> (fun () -> Llama2cLoader.Load(tmp) |> ignore)
                Expect.stringContains m2 "not a llama2.c checkpoint" "says it is not a llama2.c file"
            finally File.Delete tmp
    ]
