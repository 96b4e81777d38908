module Lens.Tests.VisualizationTests

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Text
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open Expecto
open TorchSharp
open Lens.Visualization
open Lens.Tests.TestSupport

// ---------------------------------------------------------------------------------------------
// Inputs

/// Tokens that break naive HTML/JS embedding, plus whitespace that must be shown visibly.
let nastyTokens =
    [| "<script>alert(1)</script>"; "</script><script>window.pwned=1</script>"; "&amp; &lt;"
       "\"double\" 'single'"; "\n"; " leading"; "  two"; "tab\there"; "emoji 🦀👩‍💻"; "\u2028sep"
       "<!--"; "${window.pwned=2}"; "`tick`"; "\\"; "<img src=x onerror=window.pwned=3>"; "" |]

/// Raw substrings that would mean a token escaped its text context.
let forbidden = [ "<script>alert"; "</script><script>window"; "<img src=x"; "<!--" ]

/// An exact small pattern: head 0 one-hot on the previous token (token 0 on itself), head 1 on
/// the first token, head 2 uniform over the prefix, head 3 one-hot "induction" on a repeated half.
let exactPattern (n: int) =
    let p = Array3D.zeroCreate<float32> 4 n n
    let half = n / 2
    for q in 0 .. n - 1 do
        p[0, q, max 0 (q - 1)] <- 1.0f
        p[1, q, 0] <- 1.0f
        for k in 0 .. q do p[2, q, k] <- 1.0f / float32 (q + 1)
        p[3, q, (if q >= half then q - half + 1 else q)] <- 1.0f
    p

/// A causal softmax pattern with recognisable heads (previous token, first token, induction,
/// self) and noisy ones, like a real model's.
let syntheticPattern (heads: int) (n: int) (seed: int) =
    let rnd = Random seed
    let p = Array3D.zeroCreate<float32> heads n n
    let scores = Array.zeroCreate<float> n
    let half = n / 2
    for h in 0 .. heads - 1 do
        for q in 0 .. n - 1 do
            for k in 0 .. q do
                scores[k] <-
                    match h % 6 with
                    | 0 -> if k = q - 1 then 11.0 else 0.0
                    | 1 -> if k = 0 then 9.0 else 0.0
                    | 2 -> if q >= half && k = q - half + 1 then 11.0 elif k = 0 then 4.0 else 0.0
                    | 3 -> if k = q then 6.0 else 0.0
                    | _ -> rnd.NextDouble() * 4.0 - 8.0 * float (q - k) / float n
            let m = Seq.max (Seq.take (q + 1) scores)
            let mutable sum = 0.0
            for k in 0 .. q do
                scores[k] <- exp (scores[k] - m)
                sum <- sum + scores[k]
            for k in 0 .. q do p[h, q, k] <- float32 (scores[k] / sum)
    p

/// Word-like tokens whose second half repeats the first (so induction heads have something to do).
let repeatedTokens (n: int) =
    let words =
        [| " the"; " cat"; " sat"; " on"; " a"; " mat"; ","; " and"; " then"; " it"; " ran"; "."; "\n"; " away";
           " fast"; " home" |]
    let rnd = Random 7
    let first = Array.init (n / 2) (fun _ -> words[rnd.Next words.Length])
    Array.append first (Array.init (n - n / 2) (fun i -> first[i % first.Length]))

let count (sub: string) (s: string) =
    let rec go i acc =
        match s.IndexOf(sub, i, StringComparison.Ordinal) with -1 -> acc | j -> go (j + sub.Length) (acc + 1)
    go 0 0

/// The HTML with figure ids replaced, to compare two renders of the same input.
let withoutIds (html: string) = Regex.Replace(html, "lens-[a-z]+-[0-9a-f]+-[0-9]+", "ID")

let save (name: string) (content: HtmlContent) =
    let path = artifact name
    content.Save path
    path

/// The `"data":"..."` part of an attention figure (ids differ between renders, the data must not).
let dataOf (html: string) =
    let i = html.IndexOf("\"data\":\"", StringComparison.Ordinal)
    html.Substring(i, html.IndexOf('"', i + 8) - i)

// ---------------------------------------------------------------------------------------------
// PNG decoding, written independently of the encoder (bitwise CRC, manual chunk walk).

let crc32 (data: byte[]) =
    let mutable c = 0xFFFFFFFFu
    for b in data do
        c <- c ^^^ uint32 b
        for _ in 1..8 do
            c <- if c &&& 1u <> 0u then 0xEDB88320u ^^^ (c >>> 1) else c >>> 1
    c ^^^ 0xFFFFFFFFu

let be32 (b: byte[]) (i: int) =
    (uint32 b[i] <<< 24) ||| (uint32 b[i + 1] <<< 16) ||| (uint32 b[i + 2] <<< 8) ||| uint32 b[i + 3]

/// (width, height, pixel x y -> (r, g, b)); checks the signature, chunk CRCs, IHDR fields and row filters.
let decodePng (png: byte[]) =
    Expect.sequenceEqual png[0..7] [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |] "PNG signature"
    let chunks = ResizeArray<string * byte[]>()
    let mutable o = 8
    while o < png.Length do
        let len = int (be32 png o)
        let kind = Encoding.ASCII.GetString(png, o + 4, 4)
        Expect.equal (be32 png (o + 8 + len)) (crc32 png[o + 4 .. o + 7 + len]) (sprintf "%s chunk CRC" kind)
        chunks.Add(kind, png[o + 8 .. o + 7 + len])
        o <- o + 12 + len
    Expect.sequenceEqual (chunks |> Seq.map fst |> Seq.distinct) [ "IHDR"; "IDAT"; "IEND" ] "chunk order"
    let ihdr = snd chunks[0]
    let w, h = int (be32 ihdr 0), int (be32 ihdr 4)
    Expect.sequenceEqual ihdr[8..12] [| 8uy; 2uy; 0uy; 0uy; 0uy |] "8-bit RGB, deflate, no interlace"
    let idat = chunks |> Seq.filter (fun (k, _) -> k = "IDAT") |> Seq.collect snd |> Array.ofSeq
    use z = new ZLibStream(new MemoryStream(idat), CompressionMode.Decompress)
    use raw = new MemoryStream()
    z.CopyTo raw
    let raw = raw.ToArray()
    let stride = 1 + 3 * w
    Expect.equal raw.Length (h * stride) "decompressed size"
    for y in 0 .. h - 1 do Expect.equal raw[y * stride] 0uy "filter type 0"
    let pixel x y = let i = y * stride + 1 + 3 * x in (raw[i], raw[i + 1], raw[i + 2])
    w, h, pixel

let rgb (c: Rgb) = (c.R, c.G, c.B)

// ---------------------------------------------------------------------------------------------
// A stand-in for .NET Interactive's Formatter (same static method shapes), to test the reflection.

type FakeFormatter() =
    static member val Registered: (Type * Action<obj, TextWriter> * string) list = [] with get, set
    static member val Preferred: (Type * string[]) list = [] with get, set
    static member Register(t: Type, formatter: Action<obj, TextWriter>, mimeType: string) =
        FakeFormatter.Registered <- (t, formatter, mimeType) :: FakeFormatter.Registered
    static member SetPreferredMimeTypesFor(t: Type, mimeTypes: string[]) =
        FakeFormatter.Preferred <- (t, mimeTypes) :: FakeFormatter.Preferred

// ---------------------------------------------------------------------------------------------

let htmlTests =
    testList "html" [
        testCase "tokens show whitespace visibly" <| fun () ->
            let cases =
                [ " the", "␣the"; "  x y", "␣␣x y"; "\n", "↵"; "a\r\nb", "a↵b"; "a\tb", "a⇥b"; "", "∅"
                  "\u0001", "\u2401"; "plain", "plain"; "🦀", "🦀" ]
            for token, shown in cases do
                Expect.equal (TokenText.Display token) shown (sprintf "display of %A" token)

        testCase "nasty tokens are escaped by every renderer" <| fun () ->
            let n = nastyTokens.Length
            let values = Array.init n (fun i -> float32 i - 7.0f)
            let topTokens = Array.init n (fun i -> [| nastyTokens[(i + 1) % n]; nastyTokens[(i + 2) % n] |])
            let topValues = Array.init n (fun _ -> [| 0.7f; 0.2f |])
            let grid = Array2D.init 2 n (fun r c -> float32 (r - c))
            let figures =
                [ "attention patterns",
                      AttentionPatterns.RenderFragment(nastyTokens, syntheticPattern 2 n 1, [| "<b>L0H0"; "L0H1&" |],
                                                       "<i>title")
                  "attention heads",
                      AttentionHeads.RenderFragment(nastyTokens, syntheticPattern 2 n 1, [| "<b>L0H0"; "L0H1&" |],
                                                    "<i>title")
                  "colored tokens", ColoredTokens.RenderFragment(nastyTokens, values, "<i>label")
                  "top-k", TopKTokens.RenderFragment(nastyTokens, topTokens, topValues, "<i>title")
                  "heatmap", Heatmap.RenderFragment(grid, [| "<r0>"; "r&1" |], nastyTokens, "<i>title")
                  "line plot", LinePlot.RenderFragment(nastyTokens,
                                                       [| "<script>alert(1)</script>";
                                                          "</script><script>window.pwned=1</script>" |],
                                                       [| values; Array.rev values |], "<i>title", "<x>", "<y>") ]
            for name, fig in figures do
                for bad in forbidden @ [ "<i>"; "<b>"; "<r0>"; "<x>" ] do
                    Expect.isFalse (fig.Html.Contains bad) (sprintf "%s: raw %s in the HTML" name bad)
                Expect.equal (count "<script" fig.Html) 1 (sprintf "%s: exactly its own script element" name)
                Expect.equal (count "</script" fig.Html) 1 (sprintf "%s: exactly one script end" name)
            let report =
                Report("<h1>x</h1>").SetModel("<model>").SetSource("attn <script>alert(1)</script> & \"q\"", "<file>")
                    .AddTable("<t>", [| "<a>"; "b" |], [| [| "<script>alert(1)</script>"; "1" |] |])
                    .AddText("<!-- comment").Render()
            for bad in forbidden @ [ "<h1>x"; "<model>"; "<file>"; "<t>"; "<a>" ] do
                Expect.isFalse (report.Html.Contains bad) (sprintf "report: raw %s" bad)
            Expect.stringContains report.Html "attn &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"
                "source escaped in <pre>"

        testCase "renderers reject inconsistent input with clear messages" <| fun () ->
            let throwsWith (what: string) (needle: string) (f: unit -> obj) =
                let e = Expect.throwsC (fun () -> f () |> ignore) id
                Expect.isTrue (e :? ArgumentException) (sprintf "%s: ArgumentException, got %s" what (e.GetType().Name))
                Expect.stringContains e.Message needle what
            let p = exactPattern 6
            throwsWith "token count" "7 tokens" (fun () -> AttentionPatterns.Render(Array.create 7 "a", p) :> obj)
            throwsWith "head names" "2 head names for 4 heads"
                (fun () -> AttentionPatterns.Render(Array.create 6 "a", p, [| "a"; "b" |]) :> obj)
            let bad = Array3D.init 4 6 6 (fun h q k -> p[h, q, k])
            bad[1, 2, 0] <- nanf
            throwsWith "NaN weight" "pattern[1, 2, 0]" (fun () -> AttentionHeads.Render(Array.create 6 "a", bad) :> obj)
            throwsWith "values" "3 tokens but 2 values"
                (fun () -> ColoredTokens.Render([| "a"; "b"; "c" |], [| 1.0f; 2.0f |]) :> obj)
            throwsWith "top-k shape" "position 1: 2 top tokens but 1 values" (fun () ->
                TopKTokens.Render([| "a"; "b" |], [| [| "x"; "y" |]; [| "x"; "y" |] |],
                                  [| [| 1.0f; 0.5f |]; [| 1.0f |] |]) :> obj)
            throwsWith "row labels" "1 row labels for 2 rows"
                (fun () -> Heatmap.Render(Array2D.zeroCreate 2 3, [| "a" |]) :> obj)
            throwsWith "line length" "has 2 values for 3 x positions"
                (fun () -> LinePlot.Render([| "a"; "b"; "c" |], [| "s" |], [| [| 1.0f; 2.0f |] |]) :> obj)
            throwsWith "table rows" "row 0 has 1 cells but the header has 2"
                (fun () -> TextTable.Render([| "a"; "b" |], [| [| "x" |] |]) :> obj)
            throwsWith "page as figure" "RenderFragment"
                (fun () -> Report("r").AddFigure("f", Heatmap.Render(Array2D.zeroCreate 1 1)) :> obj)
            use t2 = torch.zeros(3L, 3L)
            throwsWith "tensor rank" "[head, query, key]"
                (fun () -> AttentionPatterns.Render(Array.create 3 "a", t2) :> obj)

        testCase "a causal pattern is packed as its lower triangle, one byte per weight" <| fun () ->
            let n = 9
            let p = syntheticPattern 3 n 3
            let data = AttentionData(Array.create n "t", p, null)
            let json = JsonNode.Parse(data.ToJson())
            Expect.isTrue (json["causal"].GetValue<bool>()) "causal"
            Expect.equal (json["map"].GetValue<string>()) "seq" "probabilities use the sequential scale"
            let bytes = Convert.FromBase64String(json["data"].GetValue<string>())
            Expect.equal bytes.Length (3 * n * (n + 1) / 2) "lower triangle only"
            let mutable o = 0
            for h in 0 .. 2 do
                for q in 0 .. n - 1 do
                    for k in 0 .. q do
                        Expect.isLessThanOrEqual (abs (float bytes[o] / 255.0 - float p[h, q, k])) (0.5 / 255.0 + 1e-9)
                            "quantised weight"
                        o <- o + 1
            let signed = Array3D.init 1 3 3 (fun _ q k -> float32 (q - k))
            let d = JsonNode.Parse(AttentionData(Array.create 3 "t", signed, null).ToJson())
            Expect.isFalse (d["causal"].GetValue<bool>()) "values above the diagonal: not causal"
            Expect.equal (d["map"].GetValue<string>()) "div" "signed values use the diverging scale"
            Expect.equal (Convert.FromBase64String(d["data"].GetValue<string>()).Length) 9 "full square"

        testCase "fragments have unique ids and pages wrap them" <| fun () ->
            let p = exactPattern 4
            let a = AttentionPatterns.RenderFragment([| "a"; "b"; "c"; "d" |], p)
            let b = AttentionPatterns.RenderFragment([| "a"; "b"; "c"; "d" |], p)
            let idOf (h: string) = let i = h.IndexOf(" id=\"") + 5 in h.Substring(i, h.IndexOf('"', i) - i)
            Expect.notEqual (idOf a.Html) (idOf b.Html) "ids differ"
            Expect.isFalse a.IsPage "a fragment"
            let page = HtmlPage.Wrap("two", a, b)
            Expect.isTrue page.IsPage "a page"
            Expect.isTrue (page.Html.StartsWith "<!DOCTYPE html>") "doctype"
            Expect.stringContains page.Html "<meta charset=\"utf-8\">" "declares UTF-8"
            Expect.isFalse (page.Html.Contains "http://" || page.Html.Contains "https://") "no external URLs"
            Expect.equal (page.ToString()) page.Html "ToString is the HTML"
            Expect.equal (page.ToHtml()) page.Html "ToHtml is the HTML"

        testCase "tensor overloads give the same figures as arrays" <| fun () ->
            let n = 7
            let p = syntheticPattern 2 n 5
            let flat = Array.init (2 * n * n) (fun i -> p[i / (n * n), (i / n) % n, i % n])
            use flatT = torch.tensor flat
            use t = flatT.reshape(1L, 2L, int64 n, int64 n)
            let tokens = Array.init n string
            Expect.equal (dataOf (AttentionPatterns.RenderFragment(tokens, t).Html))
                (dataOf (AttentionPatterns.RenderFragment(tokens, p).Html)) "batch-of-one tensor = array"
            use t3 = t.squeeze(0L).to_type(torch.float64)
            Expect.equal (dataOf (AttentionHeads.RenderFragment(tokens, t3).Html))
                (dataOf (AttentionHeads.RenderFragment(tokens, p).Html)) "float64 tensor = array"
            let grid = Array2D.init 3 4 (fun r c -> float32 (r * 4 + c) / 10.0f - 0.5f)
            use gFlat = torch.tensor (Array.init 12 (fun i -> grid[i / 4, i % 4]))
            use g = gFlat.reshape(3L, 4L)
            Heatmap.WritePng(artifact "heatmap-from-tensor.png", g) |> ignore
            Expect.equal (File.ReadAllBytes(artifact "heatmap-from-tensor.png")) (Heatmap.EncodePng(grid).Bytes)
                "heatmap PNG from tensor"
            let rows = Array.init 3 (fun r -> Array.init 4 (fun c -> grid[r, c]))
            Expect.equal (withoutIds (LinePlot.RenderFragment([| "a"; "b"; "c"; "d" |], [| "x"; "y"; "z" |], g).Html))
                         (withoutIds
                             (LinePlot.RenderFragment([| "a"; "b"; "c"; "d" |], [| "x"; "y"; "z" |], rows).Html))
                             "line plot from tensor"
            Expect.equal (LayerHeadTable.Render(g, "t")) (LayerHeadTable.Render(grid, "t"))
                "layer-head table from tensor"
    ]

let pngTests =
    testList "png" [
        testCase "CRC-32 matches the standard check value" <| fun () ->
            let check = Encoding.ASCII.GetBytes "123456789"
            Expect.equal (crc32 check) 0xCBF43926u "the test's own CRC"
            Expect.equal (Png.Crc32(ReadOnlySpan check)) 0xCBF43926u "the encoder's CRC"

        testCase "heatmap PNG decodes back to its size, labels and cell colours" <| fun () ->
            let values = array2D [ [ 2.0f; -2.0f; 0.0f; nanf ]; [ 1.0f; -0.5f; 0.25f; -1.0f ] ]
            let path = artifact "heatmap-test.png"
            let png = Heatmap.WritePng(path, values, [| "L0"; "L1" |], [| "H0"; "H1"; "H2"; "H3" |], "Test scores", 40)
            let bytes = File.ReadAllBytes path
            Expect.equal bytes png.Bytes "the file holds the encoded bytes"
            let w, h, pixel = decodePng bytes
            Expect.equal (w, h) (png.Width, png.Height) "IHDR size = reported size"
            Expect.isLessThan (png.GridLeft + 4 * 40) w "grid fits horizontally"
            Expect.isLessThan (png.GridTop + 2 * 40) h "grid fits vertically"
            for r in 0 .. 1 do
                for c in 0 .. 3 do
                    let struct (x, y) = png.CellCenter(r, c)
                    Expect.equal (pixel x y) (rgb (ColorMap.DivergingFor(float values[r, c], 2.0)))
                        (sprintf "cell %d,%d" r c)
            let at (png: HeatmapPng) (pixel: int -> int -> byte * byte * byte) r c =
                let struct (x, y) = png.CellCenter(r, c) in pixel x y
            Expect.equal (at png pixel 0 0) (178uy, 24uy, 43uy) "largest value: full red"
            Expect.equal (at png pixel 0 1) (33uy, 102uy, 172uy) "most negative: full blue"
            Expect.equal (at png pixel 0 2) (255uy, 255uy, 255uy) "zero: white"
            Expect.equal (at png pixel 0 3) (200uy, 200uy, 200uy) "NaN: grey"
            let gridRight = png.GridLeft + 4 * 40
            let rowHas y colour = [ gridRight .. w - 1 ] |> List.exists (fun x -> pixel x y = colour)
            Expect.isTrue (rowHas png.GridTop (rgb (ColorMap.Diverging 1.0))) "colour bar starts at full red"
            Expect.isTrue (rowHas (png.GridTop + 119) (rgb (ColorMap.Diverging -1.0))) "colour bar ends at full blue"
            let ink = (40uy, 40uy, 40uy)
            let inkIn x0 x1 y0 y1 = [ for x in x0 .. x1 do for y in y0 .. y1 -> pixel x y ] |> List.contains ink
            Expect.isTrue (inkIn 0 (png.GridLeft - 1) png.GridTop (png.GridTop + 79)) "row labels drawn"
            Expect.isTrue (inkIn png.GridLeft (gridRight - 1) 0 (png.GridTop - 1)) "column labels and title drawn"
            let scaled = Heatmap.EncodePng(values, maxAbs = 4.0f)
            let _, _, px2 = decodePng scaled.Bytes
            Expect.equal (at scaled px2 0 0) (rgb (ColorMap.Diverging 0.5)) "explicit scale"

        testCase "small cells rotate long column labels and still decode" <| fun () ->
            let values = Array2D.init 3 20 (fun r c -> float32 (r * 20 + c) - 30.0f)
            let png =
                Heatmap.EncodePng(values, [| "resid_pre"; "attn_out"; "mlp_out" |], Array.init 20 (sprintf "pos %d"),
                                  "Patching", 12)
            let w, h, pixel = decodePng png.Bytes
            Expect.equal (w, h) (png.Width, png.Height) "size"
            let struct (x, y) = png.CellCenter(2, 19)
            Expect.equal (pixel x y) (rgb (ColorMap.DivergingFor(29.0, 30.0))) "last cell"
    ]

let tableTests =
    testList "tables" [
        testCase "TextTable pads columns and right-aligns numbers" <| fun () ->
            let s = TextTable.Render([| "name"; "value" |], [| [| "a"; "1" |]; [| "long name"; "-2.5" |] |])
            Expect.equal s "name       value\n---------  -----\na              1\nlong name   -2.5\n" "table"

        testCase "LayerHeadTable prints L/H labels and 3 decimals" <| fun () ->
            let s =
                LayerHeadTable.Render(array2D [ [ 0.1f; -0.25f; 1.0f ]; [ 0.0f; 0.12345f; -1.5f ] ], "Induction scores")
            let expected =
                "Induction scores\n" +
                "       H0      H1      H2\n" +
                "--  -----  ------  ------\n" +
                "L0  0.100  -0.250   1.000\n" +
                "L1  0.000   0.123  -1.500\n"
            Expect.equal s expected "layer x head table"

        testCase "HeadNames are TransformerLens style" <| fun () ->
            Expect.sequenceEqual (HeadNames.ForLayer(1, 3)) [| "L1H0"; "L1H1"; "L1H2" |] "one layer"
            Expect.sequenceEqual (HeadNames.ForLayers(2, 2)) [| "L0H0"; "L0H1"; "L1H0"; "L1H1" |] "layer-major"
    ]

let notebookTests =
    testList "notebook" [
        testCase "Register does nothing outside .NET Interactive and registers an HTML formatter inside" <| fun () ->
            Expect.isFalse (Notebook.Register()) "Microsoft.DotNet.Interactive.Formatting is not loaded here"
            Expect.isTrue (Notebook.RegisterWith(typeof<FakeFormatter>)) "a Formatter-shaped type is used"
            Expect.isTrue (Notebook.RegisterWith(typeof<FakeFormatter>)) "registering twice is harmless"
            match FakeFormatter.Registered with
            | [ t, write, mime ] ->
                Expect.equal t typeof<HtmlContent> "registered for HtmlContent"
                Expect.equal mime "text/html" "as HTML"
                use w = new StringWriter()
                write.Invoke(HtmlContent "<b>x</b>", w)
                Expect.equal (w.ToString()) "<b>x</b>" "writes the HTML"
            | other -> failtestf "expected one registration, got %d" other.Length
            match FakeFormatter.Preferred with
            | [ t, mimes ] ->
                Expect.equal t typeof<HtmlContent> "preferred MIME type set for HtmlContent"
                Expect.sequenceEqual mimes [| "text/html" |] "text/html preferred"
            | other -> failtestf "expected one preferred-MIME call, got %d" other.Length
    ]

// ---------------------------------------------------------------------------------------------
// In a real headless browser

let expectClean (page: Chromium.Page) (what: string) =
    Expect.isEmpty page.Problems (sprintf "%s: console errors or exceptions" what)
    let outside =
        page.Requests |> List.filter (fun u -> not (u.StartsWith "file:" || u.StartsWith "data:" || u = "about:blank"))
    Expect.isEmpty outside (sprintf "%s: requests that leave the page" what)

/// The indices of tokens in a figure that currently have a background colour.
let litTokens (page: Chromium.Page) (tokensOf: string) =
    page.Eval(sprintf "[...%s].flatMap((t, i) => t.style.background ? [i] : [])" tokensOf).AsArray()
    |> Seq.map (fun v -> v.GetValue<int>()) |> List.ofSeq

let css (c: Rgb) = sprintf "rgb(%d, %d, %d)" c.R c.G c.B

let timings = ResizeArray<string>()

let report (line: string) =
    printfn "  [viz] %s" line
    timings.Add line
    File.WriteAllLines(artifact "viz-timings.txt", timings)

let browserTests =
    testList "browser" [
        testCase "launching without Chromium fails with a clear message" <| fun () ->
            let e = Expect.throwsC (fun () -> Chromium.launchFrom None |> ignore) id
            Expect.stringContains e.Message "CHROMIUM MISSING" "says what is missing"
            Expect.stringContains e.Message "apt-get install -y chromium" "says how to fix it"

        testCase "attention patterns: head grid, token hover, preview and select" <| fun () ->
            let n = 12
            let tokens =
                [| "<s>"; " When"; " Mary"; " and"; " John"; " went"; " to"; " the"; " store"; ","; " John"; " gave" |]
            let path =
                save "attention-patterns.html"
                    (AttentionPatterns.Render(tokens, exactPattern n, HeadNames.ForLayer(1, 4),
                                              "Attention patterns (exact test heads)"))
            use browser = Chromium.launch ()
            Expect.stringContains browser.Version "Chrom" "a Chromium answers"
            let page = browser.NewPage(1100, 800)
            page.Goto path
            let r = "document.querySelector('.lens-ap')"
            let tokensOf = r + ".querySelectorAll('.lens-ap-tokens .lens-tok')"
            let tok i = sprintf "%s[%d]" tokensOf i
            let cell h = sprintf "%s.querySelectorAll('.lens-ap-cell')[%d]" r h
            let data key = page.EvalString(sprintf "%s.dataset.%s" r key)
            Expect.equal (data "ready") "1" "initialised"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-ap-grid .lens-ap-cell').length")) 4
                "one grid cell per head"
            Expect.equal
                (page.EvalString(sprintf "[...%s.querySelectorAll('.lens-ap-name')].map(e => e.textContent).join()" r))
                "L1H0,L1H1,L1H2,L1H3" "head names"
            Expect.equal (page.EvalString(sprintf "[...%s].map(t => t.textContent).join('|')" tokensOf))
                (tokens |> Array.map TokenText.Display |> String.concat "|") "tokens below"
            Expect.isEmpty (litTokens page tokensOf) "nothing highlighted before hovering"

            page.Hover(tok 5)
            Expect.equal (data "focusToken") "5" "focus follows the mouse"
            Expect.equal (litTokens page tokensOf) [ 4; 6 ]
                "previous-token head: 5 attends to 4 (row), 6 attends to 5 (column)"
            Expect.equal (page.EvalString(tok 4 + ".style.background")) (css (ColorMap.Sequential 1.0))
                "row colour: blue"
            Expect.equal (page.EvalString(tok 6 + ".style.background")) (css (ColorMap.Orange 1.0))
                "column colour: orange"
            page.Hover(tok 8)
            Expect.equal (litTokens page tokensOf) [ 7; 9 ] "another token, other highlights"

            let big = r + ".querySelector('.lens-ap-big canvas')"
            let pixel =
                page.Eval(sprintf "[...%s.getContext('2d').getImageData(4, 5, 1, 1).data].slice(0, 3)" big).AsArray()
                    |> Seq.map (fun v -> v.GetValue<int>()) |> List.ofSeq
            let full = ColorMap.Sequential 1.0
            Expect.equal pixel [ int full.R; int full.G; int full.B ] "large view: query 5, key 4 at full weight"
            let at =
                page.Eval(sprintf "(() => { const c = %s; c.scrollIntoView({block: 'center'}); const b = \
                                   c.getBoundingClientRect(); return [b.left + b.width * 4.5 / 12, b.top + b.height * \
                                   5.5 / 12]; })()" big)
            page.MouseMove(at[0].GetValue<float>(), at[1].GetValue<float>())
            let tip = page.EvalString(r + ".querySelector('.lens-tip').textContent")
            Expect.stringContains tip "query 5 \"␣went\" → key 4 \"␣John\"" "tooltip names the cell's tokens"
            Expect.isTrue (tip.EndsWith "\n1") (sprintf "tooltip shows the weight: %A" tip)

            page.Hover(cell 1)
            Expect.equal (data "shownHead", data "selectedHead") ("1", "0") "hovering a thumbnail previews it"
            Expect.equal (page.EvalString(r + ".querySelector('.lens-ap-headname').textContent")) "L1H1"
                "large view names the head"
            page.ClickOn(cell 1)
            Expect.equal (data "selectedHead") "1" "clicking selects"
            page.Hover(tok 0)
            Expect.equal (data "shownHead") "1" "selection stays after leaving the grid"
            Expect.equal (litTokens page tokensOf) [ 0 .. n - 1 ] "first-token head: everything attends to token 0"

            page.ClickOn(cell 3)
            page.ClickOn(tok 4)
            page.MouseMove(2.0, 2.0)
            Expect.equal (data "focusToken") "4" "a clicked token stays pinned"
            Expect.equal (litTokens page tokensOf) [ 4; 9 ] "induction head: 4 attends to itself, 9 attends to 4"
            expectClean page "attention patterns"
            page.Screenshot(artifact "attention-patterns.png")

        testCase "attention patterns: 1024 tokens x 12 heads load and respond quickly" <| fun () ->
            let n, heads = 1024, 12
            let tokens = repeatedTokens n
            let pattern = syntheticPattern heads n 11
            let sw = Stopwatch.StartNew()
            let html =
                AttentionPatterns.Render(tokens, pattern, HeadNames.ForLayer(5, heads),
                                         "Synthetic heads: 1024 tokens x 12 heads")
            let renderMs = sw.Elapsed.TotalMilliseconds
            let path = save "attention-1024.html" html
            let mb = float (FileInfo(path).Length) / 1e6
            use browser = Chromium.launch ()
            let page = browser.NewPage(1200, 900)
            sw.Restart()
            page.Goto path
            let loadMs = sw.Elapsed.TotalMilliseconds
            let r = "document.querySelector('.lens-ap')"
            let tokensOf = r + ".querySelectorAll('.lens-ap-tokens .lens-tok')"
            let tok i = sprintf "%s[%d]" tokensOf i
            Expect.equal (page.EvalString(r + ".dataset.ready")) "1" "initialised"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-ap-cell').length")) heads "one grid cell per head"
            Expect.equal (page.EvalInt(tokensOf + ".length")) n "every token shown"
            let initMs = page.EvalString(r + ".dataset.initMs")
            let hover i =
                let x, y = page.Center(tok i)
                let sw = Stopwatch.StartNew()
                page.MouseMove(x, y)
                let focus = page.EvalString(r + ".dataset.focusToken")
                let ms = sw.Elapsed.TotalMilliseconds
                Expect.equal focus (string i) (sprintf "focus on token %d" i)
                ms, page.EvalString(r + ".dataset.paintMs")
            // The large view is drawn at screen resolution; pooling must keep the previous-token diagonal.
            let diagonal =
                page.EvalFloat(sprintf "(() => { const c = %s.querySelector('.lens-ap-big canvas'), s = c.width, px = \
                                        c.getContext('2d').getImageData(0, 0, s, s).data; let ok = 0; for (let i = 1; \
                                        i < s; i++) { let best = 0, lum = 1e9; for (let j = 0; j < s; j++) { const o = \
                                        4 * (i * s + j), l = px[o] + px[o + 1] + px[o + 2]; if (l < lum) { lum = l; \
                                        best = j; } } if (Math.abs(best - i) <= 1 && lum < 400) ok++; } return ok / (s \
                                        - 1); })()" r)
            Expect.isGreaterThan diagonal 0.95 "previous-token head: a dark diagonal in the large view"
            Expect.isLessThan (page.EvalInt(r + ".querySelector('.lens-ap-big canvas').width")) n
                "large view drawn at screen resolution"
            let hover1, paint1 = hover 700
            let lit700 = litTokens page tokensOf
            Expect.contains lit700 699 "previous-token head: 700 attends to 699"
            let hover2, paint2 = hover 701
            Expect.notEqual (litTokens page tokensOf) lit700 "highlights change with the hovered token"
            page.ClickOn(sprintf "%s.querySelectorAll('.lens-ap-cell')[2]" r)
            Expect.equal (page.EvalString(r + ".dataset.selectedHead")) "2" "induction head selected"
            let hover3, paint3 = hover 900
            Expect.contains (litTokens page tokensOf) (900 - n / 2 + 1)
                "induction head: 900 attends to the token after its earlier copy"
            expectClean page "1024 x 12 attention patterns"
            page.Screenshot(artifact "attention-1024.png")
            report (sprintf "1024 tokens x 12 heads: HTML %.1f MB rendered in %.0f ms; page load %.0f ms (script init \
                             %s ms); hover round trips %.0f / %.0f / %.0f ms (repaint %s / %s / %s ms)"
                        mb renderMs loadMs initMs hover1 hover2 hover3 paint1 paint2 paint3)
            Expect.isLessThan loadMs 20000.0 "page loads within 20 s"
            Expect.isLessThan (max hover1 (max hover2 hover3)) 1000.0 "a hover is answered within 1 s"

        testCase "attention heads: labelled heatmaps with cell hover" <| fun () ->
            let n = 12
            let tokens =
                [| "<s>"; " When"; " Mary"; " and"; " John"; " went"; " to"; " the"; " store"; ","; " John"; " gave" |]
            let path =
                save "attention-heads.html"
                    (AttentionHeads.Render(tokens, exactPattern n, HeadNames.ForLayer(0, 4), "Attention heads"))
            use browser = Chromium.launch ()
            let page = browser.NewPage(1200, 900)
            page.Goto path
            let r = "document.querySelector('.lens-ah')"
            Expect.equal (page.EvalString(r + ".dataset.ready")) "1" "initialised"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-ah-head').length")) 4 "one heatmap per head"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-ah-rows span').length")) (4 * n) "query labels"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-ah-cols span').length")) (4 * n) "key labels"
            Expect.equal (page.EvalString(r + ".querySelector('.lens-ah-rows span:nth-child(6)').textContent")) "␣went"
                "labels show whitespace"
            let canvas = r + ".querySelectorAll('.lens-ah-head canvas')[3]"
            let at =
                page.Eval(sprintf "(() => { const c = %s; c.scrollIntoView({block: 'center'}); const b = \
                                   c.getBoundingClientRect(); return [b.left + b.width * 4.5 / 12, b.top + b.height * \
                                   9.5 / 12]; })()" canvas)
            page.MouseMove(at[0].GetValue<float>(), at[1].GetValue<float>())
            Expect.equal (page.EvalString(r + ".dataset.hover")) "3,9,4" "hovered cell: head 3, query 9, key 4"
            Expect.equal
                (page.EvalString(sprintf "[...%s.querySelectorAll('.lens-ah-head')[3].querySelectorAll('span.hl')].map(\
                                          s => s.textContent).join('|')" r)) "␣John|,"
                "its key and query labels light up"
            let tip = page.EvalString(r + ".querySelector('.lens-tip').textContent")
            Expect.isTrue (tip.StartsWith "L0H3: query 9" && tip.EndsWith "\n1") (sprintf "tooltip: %A" tip)
            let pixel =
                page.Eval(sprintf "[...%s.getContext('2d').getImageData(4, 9, 1, 1).data].slice(0, 3)" canvas).AsArray()
                    |> Seq.map (fun v -> v.GetValue<int>()) |> List.ofSeq
            let full = ColorMap.Sequential 1.0
            Expect.equal pixel [ int full.R; int full.G; int full.B ] "heatmap pixel"
            expectClean page "attention heads"
            page.Screenshot(artifact "attention-heads.png")

            // Too many tokens for labels: the tooltip still names them (they travel as JSON).
            let many = repeatedTokens 200
            many[150] <- "</script><b>x"
            page.Goto(save "attention-heads-200.html"
                           (AttentionHeads.Render(many, syntheticPattern 2 200 4, title = "200 tokens")))
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-ah-rows span').length")) 0 "no labels"
            let canvas = r + ".querySelectorAll('.lens-ah-head canvas')[0]"
            let at =
                page.Eval(sprintf "(() => { const c = %s; c.scrollIntoView({block: 'center'}); const b = \
                                   c.getBoundingClientRect(); return [b.left + b.width * 149.5 / 200, b.top + b.height \
                                   * 150.5 / 200]; })()" canvas)
            page.MouseMove(at[0].GetValue<float>(), at[1].GetValue<float>())
            Expect.equal (page.EvalString(r + ".dataset.hover")) "0,150,149" "hovered cell"
            Expect.stringContains (page.EvalString(r + ".querySelector('.lens-tip').textContent"))
                (sprintf "query 150 \"</script><b>x\" → key 149 \"%s\"" (TokenText.Display many[149]))
                "tooltip names both tokens"
            expectClean page "attention heads, 200 tokens"

        testCase "colored tokens, top-k, heatmap and line plot show values on hover" <| fun () ->
            use browser = Chromium.launch ()
            let page = browser.NewPage(1100, 800)
            let tipOf r = page.EvalString(r + ".querySelector('.lens-tip').textContent")
            let tipShown r = page.EvalString(r + ".querySelector('.lens-tip').style.display") = "block"

            let words = repeatedTokens 24
            let values = Array.init 24 (fun i -> float32 (sin (float i / 3.0)) * 2.5f)
            page.Goto(save "colored-tokens.html" (ColoredTokens.Render(words, values, "Logit difference per token")))
            let r = "document.querySelector('.lens-ct')"
            page.Hover(r + ".querySelectorAll('.lens-tok')[5]")
            Expect.isTrue (tipShown r) "tooltip shown"
            Expect.stringContains (tipOf r) (sprintf "5 \"%s\": " (TokenText.Display words[5]))
                "tooltip names the token"
            Expect.stringContains (tipOf r)
                ((float (values[5])).ToString("0.###", Globalization.CultureInfo.InvariantCulture))
                "tooltip shows the value"
            let maxAbs = values |> Array.map abs |> Array.max
            Expect.equal (page.EvalString(r + ".querySelectorAll('.lens-tok')[5].style.background"))
                (css (ColorMap.DivergingFor(float values[5], float maxAbs))) "colour by value"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-legend').length")) 1 "legend"
            expectClean page "colored tokens"
            page.Screenshot(artifact "colored-tokens.png")

            let toks = [| "<s>"; " The"; " cat"; " sat"; " on" |]
            let top = [| for i in 0 .. 4 -> [| " the"; " a"; sprintf " w%d" i |] |]
            let probs = [| for i in 0 .. 4 -> [| 0.6f - 0.1f * float32 i; 0.2f; 0.05f |] |]
            page.Goto(save "topk-tokens.html" (TopKTokens.Render(toks, top, probs, "Top-3 next tokens")))
            let r = "document.querySelector('.lens-tk')"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('tbody tr').length")) 5 "a row per position"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('.lens-tk-cell').length")) 15 "k cells per row"
            page.Hover(r + ".querySelectorAll('tbody tr')[2].querySelectorAll('.lens-tk-cell')[2]")
            Expect.equal (tipOf r) "position 2 \"␣cat\", #3: \"␣w2\" 0.05" "tooltip"
            expectClean page "top-k"
            page.Screenshot(artifact "topk-tokens.png")

            let rnd = Random 3
            let scores =
                Array2D.init 12 12
                    (fun l h ->
                        if (l, h) = (5, 1) || (l, h) = (6, 9) then 0.9f else float32 (rnd.NextDouble() * 0.3 - 0.1))
            page.Goto(save "heatmap.html" (Heatmap.Render(scores, Array.init 12 (sprintf "L%d"),
                                                          Array.init 12 (sprintf "H%d"), "Induction scores")))
            let r = "document.querySelector('.lens-hm')"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('td').length")) 144 "a cell per layer and head"
            page.Hover(r + ".querySelector('td[data-r=\"5\"][data-c=\"1\"]')")
            Expect.equal (page.EvalString(r + ".dataset.hover")) "5,1" "hovered cell"
            Expect.equal (tipOf r) "L5, H1: 0.9" "tooltip with the value"
            Expect.equal (page.EvalString(sprintf "[...%s.querySelectorAll('th.hl')].map(e => e.textContent).join()" r))
                "H1,L5" "row and column headers light up"
            Expect.equal (page.EvalString(r + ".querySelector('td[data-r=\"5\"][data-c=\"1\"]').style.background"))
                (css (ColorMap.Diverging 1.0)) "largest value: full colour"
            expectClean page "heatmap"
            page.Screenshot(artifact "heatmap.png")

            let layers = Array.append [| "embed" |] (Array.init 12 (sprintf "L%d"))
            let curve shift = Array.init 13 (fun i -> float32 (1.0 / (1.0 + exp (-(float i - shift)))))
            let ys = [| curve 6.0; curve 9.0; Array.init 13 (fun i -> if i = 4 then nanf else 0.1f) |]
            page.Goto(save "line-plot.html" (LinePlot.Render(layers,
                                                             [| "P(\" Mary\")"; "P(\" John\")"; "baseline <b>" |], ys,
                                                             "Logit lens", "layer", "probability")))
            let r = "document.querySelector('.lens-lp')"
            Expect.equal (page.EvalInt(r + ".querySelectorAll('path.lens-lp-line').length")) 3 "a line per series"
            let at =
                page.Eval(sprintf "(() => { const s = %s.querySelector('svg'); s.scrollIntoView({block: 'center'}); \
                                   const d = s.querySelectorAll('circle:not(.lens-lp-dot)')[5].getBoundingClientRect()\
                                   ; return [d.left + d.width / 2, d.top + d.height / 2 + 40]; })()" r)
            page.MouseMove(at[0].GetValue<float>(), at[1].GetValue<float>())
            Expect.equal (page.EvalString(r + ".dataset.hoverIndex")) "5" "nearest x"
            let tip = tipOf r
            Expect.stringContains tip "layer: L4" "x label"
            Expect.stringContains tip
                (sprintf "P(\" Mary\"): %s"
                    ((float (ys[0][5])).ToString("0.###", Globalization.CultureInfo.InvariantCulture)))
                "first line's value"
            Expect.stringContains tip "baseline <b>: 0.1" "third line's value"
            expectClean page "line plot"
            page.Screenshot(artifact "line-plot.png")

        testCase "nasty tokens render as text and run no script" <| fun () ->
            let n = nastyTokens.Length
            let grid = Array2D.init 2 n (fun r c -> float32 (r - c) / 4.0f)
            let page' =
                HtmlPage.Wrap("nasty <tokens>",
                    AttentionPatterns.RenderFragment(nastyTokens, syntheticPattern 2 n 1, [| "<b>L0H0"; "L0H1&" |],
                                                     "<i>patterns"),
                    AttentionHeads.RenderFragment(nastyTokens, syntheticPattern 1 n 1, [| "<b>L0H0" |], "<i>heads"),
                    ColoredTokens.RenderFragment(nastyTokens, Array.init n (fun i -> float32 i - 7.0f), "<i>colored"),
                    TopKTokens.RenderFragment(nastyTokens, Array.init n (fun i -> [| nastyTokens[(i + 1) % n] |]),
                                              Array.init n (fun _ -> [| 0.5f |]), "<i>top-k"),
                    Heatmap.RenderFragment(grid, [| "<r0>"; "r&1" |], nastyTokens, "<i>heatmap"))
            let path = save "nasty-tokens.html" page'
            use browser = Chromium.launch ()
            let page = browser.NewPage(1200, 900)
            page.Goto path
            Expect.isTrue (page.EvalBool "typeof window.pwned === 'undefined'") "no injected script ran"
            Expect.equal (page.EvalInt "document.images.length") 0 "no injected elements"
            Expect.equal (page.EvalInt "document.querySelectorAll('.lens-viz[data-ready=\"1\"]').length") 5
                "every figure initialised"
            let shown = nastyTokens |> Array.map TokenText.Display |> String.concat "\u0000"
            for tokens in [ ".lens-ap .lens-ap-tokens .lens-tok"; ".lens-ct .lens-ct-tokens .lens-tok";
                            ".lens-ah .lens-ah-rows span"; ".lens-ah .lens-ah-cols span" ] do
                let texts =
                    page.EvalString(sprintf "[...document.querySelectorAll('%s')].map(e => \
                                             e.textContent).join('\\u0000')" tokens)
                Expect.equal texts shown (sprintf "%s: token text exactly as displayed" tokens)
            Expect.equal (page.EvalString "document.title") "nasty <tokens>" "title escaped, not interpreted"
            page.Hover("document.querySelectorAll('.lens-ap .lens-tok')[1]")
            page.Hover("document.querySelectorAll('.lens-ct .lens-tok')[0]")
            Expect.stringContains (page.EvalString "document.querySelector('.lens-ct .lens-tip').textContent")
                "<script>alert(1)</script>" "tooltip shows the raw token as text"
            expectClean page "nasty tokens"
            page.Screenshot(artifact "nasty-tokens.png")

        testCase "a report holds several figures without id clashes" <| fun () ->
            let n = 12
            let tokens =
                [| "<s>"; " When"; " Mary"; " and"; " John"; " went"; " to"; " the"; " store"; ","; " John"; " gave" |]
            let scores = Array2D.init 2 4 (fun l h -> float32 (l * 4 + h) / 8.0f - 0.3f)
            let rep =
                Report("Induction heads on a repeated sequence")
                    .SetModel("stories260K")
                    .SetSource(("model stories260K\nrun \"When Mary and John went to the store, John gave\"\n"
                                + "show attention layer 1 <all heads>\n"), "examples/induction.lens")
                    .AddText(("Two attention figures, a heatmap, a line plot, coloured tokens and top-k predictions on "
                              + "one page."))
                    .AddTable("Top heads", [| "head"; "score" |], [| [| "L1H3"; "0.912" |]; [| "L1H0"; "0.104" |] |])
                    .AddFigure("Layer 0",
                               AttentionPatterns.RenderFragment(tokens, syntheticPattern 4 n 2,
                                                                HeadNames.ForLayer(0, 4)))
                    .AddFigure("Layer 1",
                               AttentionPatterns.RenderFragment(tokens, exactPattern n, HeadNames.ForLayer(1, 4)))
                    .AddFigure("Scores",
                               Heatmap.RenderFragment(scores, [| "L0"; "L1" |],
                                                      HeadNames.ForLayer(0, 4) |> Array.map (fun s -> s.Substring 2)))
                    .AddFigure("Logit lens",
                               LinePlot.RenderFragment([| "embed"; "L0"; "L1" |], [| "John"; "Mary" |],
                                                       [| [| 0.1f; 0.4f; 0.8f |]; [| 0.2f; 0.2f; 0.1f |] |]))
                    .AddFigure("Direct logit attribution",
                               ColoredTokens.RenderFragment(tokens, Array.init n (fun i -> float32 (i % 5) - 2.0f)))
                    .AddFigure("Predictions",
                               TopKTokens.RenderFragment(tokens, Array.init n (fun _ -> [| " John"; " Mary" |]),
                                                         Array.init n (fun _ -> [| 0.7f; 0.2f |])))
                    .AddFigure("Heads", AttentionHeads.RenderFragment(tokens, exactPattern n, HeadNames.ForLayer(1, 4)))
            let path = artifact "report.html"
            rep.Save path
            use browser = Chromium.launch ()
            let page = browser.NewPage(1200, 900)
            page.Goto path
            Expect.isTrue (page.EvalBool ("(() => { const ids = [...document.querySelectorAll('[id]')].map(e => e.id); "
                                          + "return ids.length === 7 && new Set(ids).size === 7; })()"))
                "seven figures, seven distinct ids"
            Expect.equal (page.EvalInt "document.querySelectorAll('.lens-viz[data-ready=\"1\"]').length") 7
                "every figure initialised"
            Expect.equal (page.EvalString "document.querySelector('pre').textContent")
                ("model stories260K\nrun \"When Mary and John went to the store, John gave\"\n"
                 + "show attention layer 1 <all heads>\n") "source shown verbatim"
            Expect.equal (page.EvalInt "document.querySelectorAll('table.lens-table td.num').length") 2
                "numeric table column"
            let second = "document.querySelectorAll('.lens-ap')[1]"
            page.Hover(second + ".querySelectorAll('.lens-tok')[5]")
            Expect.equal (page.EvalString(second + ".dataset.focusToken")) "5" "the hovered figure reacts"
            Expect.equal (page.EvalString "document.querySelectorAll('.lens-ap')[0].dataset.focusToken") "-1"
                "the other attention figure does not"
            Expect.equal (litTokens page (second + ".querySelectorAll('.lens-ap-tokens .lens-tok')")) [ 4; 6 ]
                "and uses its own data"
            expectClean page "report"
            page.Screenshot(artifact "report.png")
    ]

[<Tests>]
let tests =
    testList "visualization" [ htmlTests; pngTests; tableTests; notebookTests; testSequenced browserTests ]
