/// The SAE feature dashboard: its numbers equal the API's (computed here directly from the feature's
/// activations), it escapes token text, renders in a real browser with hover values, and `lens sae dashboard`.
module Lens.Tests.FeatureDashboardTests

open System
open System.Globalization
open System.IO
open System.Text.RegularExpressions
open Expecto
open TorchSharp
open Lens
open Lens.Sae
open Lens.Visualization
open Lens.Tests.TestSupport
open Lens.Tests.Processes

let private saeFolder = Path.Combine(repoRoot, "models", "demo-attn-only-2l-sae")
let private feature = 79
let private rows, length = 16, 50

/// The worked example of docs/sae.md: latent 79 of the demo SAE on 16 rows of BOS + 50 random ids twice (seed 0).
let private withExample (f: HookedTransformer -> SparseAutoencoder -> torch.Tensor -> unit) =
    use model = ModelLoader.Load "demo-attn-only-2l"
    use sae = SparseAutoencoder.Load saeFolder
    use rep = Analysis.RepeatedTokens.ForModel(model, length, 2, rows, 0UL)
    f model sae rep.Tokens

let private invariant (v: float) = v.ToString("R", CultureInfo.InvariantCulture)

/// (row, position, activation) of the page's top contexts, from its data attributes.
let private pageContexts (html: string) =
    [ for m in Regex.Matches(html,
                             "class=\"lens-fd-ctx\" data-row=\"(\\d+)\" data-pos=\"(\\d+)\" data-act=\"([^\"]+)\"") ->
        int m.Groups[1].Value, int m.Groups[2].Value, Double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) ]

let private nastySummary () =
    let toks = VisualizationTests.nastyTokens
    let ctx =
        FeatureContext(3, 5, 2.5, 0, Array.init toks.Length int64, toks,
                       Array.init toks.Length (fun i -> if i = 5 then 2.5 else 0.1 * float i))
    let tw = ResizeArray [ struct (TokenWeight(1L, 0.5), toks[0]); struct (TokenWeight(2L, 0.25), toks[14]) ]
    FeatureSummary(7, "blocks.0.<hook>", 100L, 3L, 2.5, [ ctx ], [| 0.0; 1.25; 2.5 |], [| 1L; 2L |], tw, tw, null)

let apiTests =
    testList "numbers" [
        testCase ("latent 79 of the demo SAE on repeated random rows: top contexts, firing count, histogram and logit "
                  + "tokens equal a direct computation") <| fun () ->
            withExample <| fun model sae tokens ->
                let s = (FeatureSummary.Compute(model, sae, [ feature ], [ tokens ])).[0]
                use acts = (model.Activations(sae, tokens)).select(-1, int64 feature).contiguous() // [rows, pos]
                let pos = int acts.shape[1]
                let values = acts.data<float32>().ToArray()
                use flat = acts.flatten()
                let struct (top, idx) = flat.topk 10
                let topV = top.data<float32>().ToArray()
                let topI = idx.data<int64>().ToArray()
                let direct = [ for j in 0 .. 9 -> int topI[j] / pos, int topI[j] % pos, float topV[j] ]
                let api = [ for c in s.TopContexts -> c.Row, c.Position, c.Activation ]
                Expect.equal api direct "the 10 largest activations, their rows and positions"
                Expect.equal s.Positions (int64 values.Length) "every position counted"
                Expect.equal s.Firing (values |> Array.filter (fun v -> v > 0.0f) |> Array.length |> int64)
                    "firing positions"
                Expect.equal s.MaxActivation (float (Array.max values)) "max"
                Expect.equal (Array.sum s.BinCounts) s.Firing "the histogram counts every firing position"
                for c in s.TopContexts do
                    Expect.equal c.Start (max 0 (c.Position - 8)) "8 tokens before"
                    Expect.equal c.Tokens.Length (min pos (c.Position + 5) - c.Start) "and 4 after, within the row"
                    for j in 0 .. c.Tokens.Length - 1 do
                        Expect.equal c.Activations[j] (float values[c.Row * pos + c.Start + j]) "window activations"
                    Expect.equal c.TokenIds
                        (tokens[int64 c.Row].data<int64>().ToArray()[c.Start .. c.Start + c.Tokens.Length - 1])
                        "window token ids"
                let struct (promoted, suppressed) = model.TopLogitTokens(sae, feature, 10)
                Expect.equal [ for struct (w, _) in s.Promoted -> w ] (List.ofSeq promoted)
                    "promoted tokens as TopLogitTokens"
                Expect.equal [ for struct (w, _) in s.Suppressed -> w ] (List.ofSeq suppressed)
                    "suppressed tokens as TopLogitTokens"
                // The worked example of docs/sae.md: a previous-token feature fires in the second copy, one
                // position after the token whose first copy it saw as "previous".
                let secondCopy = s.TopContexts |> Seq.filter (fun c -> c.Position > length) |> Seq.length
                let top = set [ for c in s.TopContexts -> c.Row, c.Position ]
                let twins =
                    s.TopContexts
                        |> Seq.filter
                            (fun c ->
                                top.Contains(c.Row, c.Position + length) || top.Contains(c.Row, c.Position - length))
                                    |> Seq.length
                Expect.equal (s.Firing, s.TopContexts[0].Row, s.TopContexts[0].Position) (61L, 3, 42)
                    "as docs/sae.md records: 61 firing positions, the largest at row 3 position 42"
                Expect.floatClose Accuracy.low s.MaxActivation 1.933 "max activation as docs/sae.md records"
                Expect.equal twins 8
                    "8 of the top 10 come in pairs 50 apart: the same (previous, current) tokens in both copies"
                printfn
                    "demo SAE latent %d over %d positions: fires on %d (%.1f %%), max %.3f; top-10 positions %A (%d in \
                     the second copy); promoted %A"
                    feature s.Positions s.Firing (100.0 * float s.Firing / float s.Positions) s.MaxActivation
                    [ for c in s.TopContexts -> c.Row, c.Position, Math.Round(c.Activation, 3) ] secondCopy
                        [ for struct (w, t) in s.Promoted |> Seq.truncate 5 -> t, Math.Round(w.Weight, 3) ]

                let html = (FeatureDashboard.Build(model, sae, feature, [ tokens ])).Html
                Expect.equal (pageContexts html) [ for c in s.TopContexts -> c.Row, c.Position, c.Activation ]
                    "the page's rows, positions and activations are the API's, round-trip"
                for struct (w, _) in s.Promoted do
                    Expect.stringContains html
                        (sprintf "data-token=\"%d\" data-weight=\"%s\"" w.Token (invariant w.Weight))
                        "each promoted token's logit weight"
                Expect.stringContains html (sprintf "data-firing=\"%d\"" s.Firing) "firing count"
                let fs = model |> Lens.FSharp.Sae.featureSummaries [ feature ] [ tokens ] sae
                Expect.equal [ for c in fs.Head.TopContexts -> c.Row, c.Position, c.Activation ]
                    [ for c in s.TopContexts -> c.Row, c.Position, c.Activation ] "F#: the same summary"

        testCase "bad arguments are refused with the value named" <| fun () ->
            withExample <| fun model sae tokens ->
                let e =
                    Expect.throwsC (fun () -> FeatureSummary.Compute(model, sae, [ 256 ], [ tokens ]) |> ignore)
                        (fun e -> Expect.isTrue (e :? SaeException) "an SaeException"; e.Message)
                Expect.stringContains e "feature 256 is out of range" "names the feature"
                let e =
                    Expect.throwsC (fun () -> FeatureSummary.Compute(model, sae, [ 1 ], [ tokens[0L] ]) |> ignore)
                        (fun e -> Expect.isTrue (e :? SaeException) "an SaeException"; e.Message)
                Expect.stringContains e "input 0: token ids must be [batch, pos]" "names the input"
                let e =
                    Expect.throwsC (fun () ->
                        FeatureSummary.Compute(model, sae, [ 1 ], [ tokens ], FeatureSummaryOptions(TopContexts = 0))
                            |> ignore) (fun e -> Expect.isTrue (e :? SaeException) "an SaeException"; e.Message)
                Expect.stringContains e "top contexts must be positive" "names the option"

        testCase "token text is escaped: no raw markup from tokens in the page" <| fun () ->
            let html = (FeatureDashboard.Render(nastySummary ())).Html
            for bad in VisualizationTests.forbidden do
                Expect.isFalse (html.Contains bad) (sprintf "raw %s" bad)
            Expect.stringContains html "blocks.0.&lt;hook&gt;" "hook escaped"
    ]

let browserTests =
    testSequenced <| testList "browser" [
        testCase "the dashboard renders contexts with highlights and hover values, and runs no script from token text"
        <| fun () ->
            use browser = Chromium.launch ()
            let page = browser.NewPage(1200, 900)
            withExample <| fun model sae tokens ->
                let s = (FeatureSummary.Compute(model, sae, [ feature ], [ tokens ])).[0]
                page.Goto(VisualizationTests.save "feature-dashboard.html" (FeatureDashboard.Render s))
                let r = "document.querySelector('.lens-fd')"
                Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-fd-ctx').length")) s.TopContexts.Count
                    "a row per top context"
                Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-tok[data-peak]').length")) s.TopContexts.Count
                    "one peak token per context"
                let c0 = s.TopContexts[0]
                let lit = page.EvalInt(r + ".querySelectorAll('.lens-fd-ctx')[0].querySelectorAll('.lens-tok').length")
                Expect.equal lit c0.Tokens.Length "the window's tokens"
                let shaded =
                    page.EvalInt(sprintf "[...%s.querySelectorAll('.lens-fd-ctx')[0].querySelectorAll('.lens-tok')].fil\
                                          ter(t => t.style.background).length" r)
                Expect.equal shaded (c0.Activations |> Array.filter (fun v -> v > 0.0) |> Array.length)
                    "tokens where the feature fires are shaded, the others not"
                page.Hover(r + ".querySelector('.lens-fd-ctx .lens-tok[data-peak]')")
                let tip = page.EvalString(r + ".querySelector('.lens-tip').textContent")
                Expect.stringContains tip (sprintf "row %d pos %d" c0.Row c0.Position) "tooltip names the position"
                Expect.stringContains tip (c0.Activation.ToString("0.###", CultureInfo.InvariantCulture))
                    "tooltip shows the activation"
                Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-fd-bin').length")) 20 "histogram bins"
                Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-fd-promoted tbody tr').length")) 10
                    "promoted tokens"
                VisualizationTests.expectClean page "feature dashboard"
                page.Screenshot(artifact "feature-dashboard.png")

            page.Goto(VisualizationTests.save "feature-dashboard-nasty.html" (FeatureDashboard.Render(nastySummary ())))
            Expect.isTrue (page.EvalBool "typeof window.pwned === 'undefined'") "no injected script ran"
            Expect.equal (page.EvalInt "document.images.length") 0 "no injected elements"
            let shown = VisualizationTests.nastyTokens |> Array.map TokenText.Display |> String.concat "\u0000"
            Expect.equal (page.EvalString ("[...document.querySelectorAll('.lens-fd-ctx .lens-tok')].map(e => "
                                           + "e.textContent).join('\\u0000')")) shown "token text exactly as displayed"
            page.Hover "document.querySelectorAll('.lens-fd-ctx .lens-tok')[0]"
            Expect.stringContains (page.EvalString "document.querySelector('.lens-fd .lens-tip').textContent")
                "<script>alert(1)</script>" "tooltip shows the raw token as text"
            VisualizationTests.expectClean page "nasty dashboard"
    ]

let cliTests =
    testList "cli" [
        testCase "lens sae dashboard writes the page; bad input gets located errors before any work" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "lens-dash-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                let out = Path.Combine(dir, "f79.html")
                let r =
                    lens [ "sae"; "dashboard"; "demo-attn-only-2l"; "--sae"; saeFolder; "--feature"; "79";
                           "--repeat-random"; "50"; "--rows"; "16"; "--out"; out ]
                Expect.equal r.ExitCode 0 (sprintf "writes: %s %s" r.Stdout r.Stderr)
                withExample <| fun model sae tokens ->
                    let s = (FeatureSummary.Compute(model, sae, [ feature ], [ tokens ])).[0]
                    Expect.equal (pageContexts (File.ReadAllText out))
                        [ for c in s.TopContexts -> c.Row, c.Position, c.Activation ]
                        "the same inputs (seed 0) and numbers as the API"
                Expect.equal [ for f in Directory.GetFiles dir -> Path.GetFileName f ] [ "f79.html" ]
                    "no temporary file left"
                let inputs = Path.Combine(dir, "inputs.txt")
                File.WriteAllLines(inputs,
                                   [ "The cat sat on the mat. The cat sat on the mat."; "";
                                     "One two three, one two three." ])
                let fromText =
                    lens [ "sae"; "dashboard"; "demo-attn-only-2l"; "--sae"; saeFolder; "--feature"; "79"; "--feature";
                           "3"; "--inputs"; inputs; "--out"; Path.Combine(dir, "text.html") ]
                Expect.equal fromText.ExitCode 0 (sprintf "writes: %s %s" fromText.Stdout fromText.Stderr)
                Expect.stringContains fromText.Stdout ("features 79, 3 of the SAE at blocks.0.hook_resid_post over 2 "
                                                       + "rows") "one row per non-empty line, both features"
                Expect.equal
                    (Regex.Matches(File.ReadAllText(Path.Combine(dir, "text.html")),
                                   "class=\"lens-viz lens-fd\"").Count) 2
                    "a dashboard per feature"
                File.Delete(Path.Combine(dir, "text.html")); File.Delete inputs
                let noDir =
                    lens [ "sae"; "dashboard"; "demo-attn-only-2l"; "--sae"; saeFolder; "--feature"; "79";
                           "--repeat-random"; "50"; "--out"; dir ]
                Expect.equal noDir.ExitCode 2 "a folder as --out is a usage error"
                Expect.stringContains noDir.Stderr "--out: " "names the option"
                Expect.stringContains noDir.Stderr "is a folder, not a file" "says why"
                let bad =
                    lens [ "sae"; "dashboard"; "demo-attn-only-2l"; "--sae"; saeFolder; "--feature"; "300";
                           "--repeat-random"; "50"; "--out"; Path.Combine(dir, "y.html") ]
                Expect.equal bad.ExitCode 1 "an out-of-range feature fails"
                Expect.stringContains bad.Stderr "feature 300 is out of range" "names the feature"
                Expect.isFalse (bad.Stderr.Contains "   at ") "no stack trace"
                Expect.isFalse (File.Exists(Path.Combine(dir, "y.html"))) "nothing written"
            finally Directory.Delete(dir, true)
    ]

[<Tests>]
let tests = testList "feature dashboard" [ apiTests; browserTests; cliTests ]
