/// The project's habits, read from the files that set them: every C# project builds with the recommended .NET
/// analyzers as errors, every packable project ships its XML documentation, .editorconfig says why it sets a rule
/// aside, and CI checks formatting before it runs the tests.
module Lens.Tests.HabitsTests

open System
open System.IO
open System.Xml.Linq
open Expecto
open Lens.Tests.TestSupport
open Lens.Tests.ProjectReferenceTests

/// The values a project file (or Directory.Build.props) gives a property, in every PropertyGroup.
let private propertyValues (path: string) (name: string) =
    XDocument.Load(path).Descendants(XName.Get name)
    |> Seq.filter (fun e -> not (isNull e.Parent) && e.Parent.Name.LocalName = "PropertyGroup")
    |> Seq.map (fun e -> e.Value.Trim())
    |> List.ofSeq

let private buildProps = Path.Combine(repoRoot, "Directory.Build.props")

/// The one value Directory.Build.props gives a property (fails when it gives none or several).
let private sharedValue (name: string) =
    match propertyValues buildProps name with
    | [ v ] -> v
    | [] -> failtestf "Directory.Build.props does not set %s" name
    | vs -> failtestf "Directory.Build.props sets %s %d times (%s)" name vs.Length (String.Join(", ", vs))

/// A project's own value for a property, else Directory.Build.props's (None when neither sets it).
let private effectiveValue (path: string) (name: string) =
    match propertyValues path name with
    | [] -> propertyValues buildProps name |> List.tryLast
    | vs -> Some(List.last vs)

/// Non-comment lines of a shell script, trimmed.
let private commandLines (path: string) =
    File.ReadAllLines path
    |> Array.map (fun l -> l.Trim())
    |> Array.filter (fun l -> l <> "" && not (l.StartsWith "#"))

/// For each line of a file, and once more for its end, whether it begins inside a multi-line triple-quoted string (C#'s
/// raw string literals, F#'s """..."""): such text (CSS, JavaScript, help text, JSON) a line break would change.
let private insideTripleQuotes (lines: string[]) =
    let delimiters (line: string) = (line.Length - line.Replace("\"\"\"", "").Length) / 3
    lines |> Array.scan (fun inside line -> if delimiters line % 2 = 1 then not inside else inside) false

/// The F# sources of src/, tests/ and examples/, without build output.
let private fsharpFiles () =
    [ for dir in [ "src"; "tests"; "examples" ] do
        for pattern in [ "*.fs"; "*.fsx"; "*.fsi" ] do
            yield! Directory.EnumerateFiles(Path.Combine(repoRoot, dir), pattern, SearchOption.AllDirectories) ]
    |> List.filter (fun f ->
        let path = f.Replace('\\', '/')
        not (path.Contains "/bin/" || path.Contains "/obj/" || path.Contains "node_modules"))

/// .editorconfig's max_line_length for F# files (the section naming *.fs), which no formatter enforces.
let private maxLineLength () =
    let lines = File.ReadAllLines(Path.Combine(repoRoot, ".editorconfig")) |> Array.map (fun l -> l.Trim())
    let section = lines |> Array.findIndex (fun l -> l.StartsWith "[" && l.Contains "fs,")
    lines[section + 1 ..]
    |> Array.takeWhile (fun l -> not (l.StartsWith "["))
    |> Array.pick (fun l ->
        match l.Split('=') |> Array.map (fun p -> p.Trim()) with
        | [| "max_line_length"; n |] -> Some(int n)
        | _ -> None)

/// F# lines longer than max_line_length on purpose: (file, a piece of the line, why it cannot break).
let private keptLong : (string * string * string) list =
    [ "tests/Models/OlmoeTests.fs", "let json = sprintf \"\"\"{\"d_model\": 32,",
      "a one-line triple-quoted format string: no break keeps both its text and its format" ]

[<Tests>]
let tests =
    testList "habits" [
        testCase "every C# project builds with the recommended analyzers as errors; none turns them off" <| fun () ->
            Expect.equal (sharedValue "AnalysisLevel") "latest-recommended" "Directory.Build.props: AnalysisLevel"
            Expect.equal (sharedValue "TreatWarningsAsErrors") "true" "Directory.Build.props: TreatWarningsAsErrors"
            let csharp = projectFiles () |> List.filter (fun (_, path) -> path.EndsWith ".csproj")
            Expect.isGreaterThanOrEqual csharp.Length 4 "finds the C# projects"
            for name, path in csharp do
                Expect.equal (effectiveValue path "AnalysisLevel") (Some "latest-recommended") $"{name}: AnalysisLevel"
                let warningsAsErrors = effectiveValue path "TreatWarningsAsErrors"
                Expect.equal warningsAsErrors (Some "true") $"{name}: TreatWarningsAsErrors"
                for off in [ "EnableNETAnalyzers"; "RunAnalyzers"; "RunAnalyzersDuringBuild" ] do
                    Expect.isFalse (propertyValues path off |> List.contains "false") $"{name} sets {off} to false"

        testCase "every packable project generates its XML documentation" <| fun () ->
            let packable =
                projectFiles () |> List.filter (fun (_, path) -> effectiveValue path "IsPackable" <> Some "false")
            Expect.isGreaterThanOrEqual packable.Length 4 "finds Lens.Core, Lens.Dsl, Lens.FSharp and lens"
            for name, path in packable do
                Expect.equal (effectiveValue path "GenerateDocumentationFile") (Some "true")
                    $"{name} is packable, so it sets GenerateDocumentationFile to true (or IsPackable to false)"

        testCase ".editorconfig gives the reason for every analyzer rule it sets aside" <| fun () ->
            let lines = File.ReadAllLines(Path.Combine(repoRoot, ".editorconfig")) |> Array.map (fun l -> l.Trim())
            let rules = lines |> Array.indexed |> Array.filter (fun (_, l) -> l.StartsWith "dotnet_diagnostic.")
            Expect.isNonEmpty rules "sets analyzer severities"
            for i, rule in rules do
                // A group of rules shares the comment above its first line.
                let mutable j = i - 1
                while j >= 0 && lines[j].StartsWith "dotnet_diagnostic." do j <- j - 1
                let commented = j >= 0 && lines[j].StartsWith "#"
                Expect.isTrue commented $".editorconfig line {i + 1} ({rule}) has a comment above it saying why"

        testCase "every F# file keeps .editorconfig's basics: spaces, LF, no trailing blanks, a final newline"
        <| fun () ->
            let files = fsharpFiles ()
            Expect.isGreaterThan files.Length 50 "finds the F# files"
            let problems =
                [ for f in files do
                    let text = File.ReadAllText f
                    let name = Path.GetRelativePath(repoRoot, f)
                    if text.Contains '\r' then yield $"{name}: CR line endings"
                    if text.Length > 0 && not (text.EndsWith "\n") then yield $"{name}: no final newline"
                    for i, line in text.Split('\n') |> Array.indexed do
                        if line.Contains '\t' then yield $"{name}:{i + 1}: a tab"
                        if line.Length > 0
                            && Char.IsWhiteSpace line[line.Length - 1] then yield $"{name}:{i + 1}: trailing blanks" ]
            Expect.isEmpty problems (String.Join("\n", problems))

        testCase "every F# line fits in .editorconfig's 120 columns" <| fun () ->
            let limit = maxLineLength ()
            Expect.equal limit 120 ".editorconfig's max_line_length for F#"
            let problems =
                [ for f in fsharpFiles () do
                    let name = Path.GetRelativePath(repoRoot, f).Replace('\\', '/')
                    let lines = File.ReadAllText(f).Split('\n')
                    let inString = insideTripleQuotes lines
                    for i, line in Array.indexed lines do
                        let kept = keptLong |> List.exists (fun (file, text, _) -> file = name && line.Contains text)
                        // a line that begins or ends inside the string holds some of its text
                        if line.Length > limit && not inString[i] && not inString[i + 1] && not kept then
                            yield $"{name}:{i + 1}: {line.Length} columns (break it as docs/habits.md says)" ]
            Expect.isEmpty problems (String.Join("\n", problems))

        testCase "every C# line in src/ fits in 120 columns, except the content of raw string literals" <| fun () ->
            let files =
                Directory.EnumerateFiles(Path.Combine(repoRoot, "src"), "*.cs", SearchOption.AllDirectories)
                |> Seq.map (fun f -> Path.GetRelativePath(repoRoot, f).Replace('\\', '/'))
                |> Seq.filter (fun f -> not (f.Contains "/bin/" || f.Contains "/obj/"))
                |> List.ofSeq
            Expect.isGreaterThan files.Length 100 "finds the C# files in src/"
            let problems =
                [ for f in files do
                    let lines = File.ReadAllText(Path.Combine(repoRoot, f)).Split('\n')
                    let inRaw = insideTripleQuotes lines
                    for i, line in Array.indexed lines do
                        if line.Length > 120 && not inRaw[i] then yield $"{f}:{i + 1}: {line.Length} columns" ]
            Expect.isEmpty problems (String.Join("\n", problems))

        testCase ".ci/run runs dotnet format --verify-no-changes before ./test, and stops on its failure" <| fun () ->
            let ci = Path.Combine(repoRoot, ".ci", "run")
            let lines = commandLines ci
            Expect.contains lines "set -euo pipefail" ".ci/run stops at the first failing command"
            let isFormat (l: string) = l.StartsWith "dotnet format " && l.Contains "--verify-no-changes"
            let format = lines |> Array.tryFindIndex isFormat
            let test = lines |> Array.tryFindIndex (fun l -> l = "./test" || l.StartsWith "./test ")
            Expect.isSome format ".ci/run runs dotnet format ... --verify-no-changes"
            Expect.isSome test ".ci/run runs ./test"
            Expect.isLessThan format.Value test.Value "the format check comes before ./test"
            for l in lines |> Array.filter isFormat do
                Expect.isFalse (l.Contains "||") $"the format check's failure is not swallowed: {l}"
    ]
