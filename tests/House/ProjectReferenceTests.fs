/// The rule of docs/architecture.md, "Who may reference whom", checked against the project files: every
/// ProjectReference is allowed by the table, every project has a row, and only hosts bring a libtorch backend.
module Lens.Tests.ProjectReferenceTests

open System
open System.IO
open System.Text.RegularExpressions
open System.Xml.Linq
open Expecto
open Lens.Tests.TestSupport

/// Every .csproj and .fsproj under src/ and tests/, by project name (the file name without its extension).
let projectFiles () =
    [ "src"; "tests" ]
    |> List.collect (fun dir ->
        Directory.EnumerateFiles(Path.Combine(repoRoot, dir), "*.*proj", SearchOption.AllDirectories)
        |> Seq.filter (fun f -> f.EndsWith ".csproj" || f.EndsWith ".fsproj")
        |> Seq.filter (fun f -> not (f.Contains "/bin/" || f.Contains "/obj/"))
        |> List.ofSeq)
    |> List.map (fun f -> Path.GetFileNameWithoutExtension f, f)

let private items (path: string) (kind: string) =
    XDocument.Load(path).Descendants(XName.Get kind)
    |> Seq.map (fun e -> e, e.Attribute(XName.Get "Include").Value)
    |> List.ofSeq

/// The projects a project file references, by name.
let projectReferences (path: string) =
    items path "ProjectReference" |> List.map (fun (_, inc) -> Path.GetFileNameWithoutExtension(inc.Replace('\\', '/')))

/// The table under "## Who may reference whom": project name -> the names it may reference.
let allowedReferences () =
    let doc = File.ReadAllText(Path.Combine(repoRoot, "docs", "architecture.md"))
    let start = doc.IndexOf "## Who may reference whom"
    if start < 0 then failtest "docs/architecture.md has no section \"## Who may reference whom\""
    let section = doc.Substring start
    let next = section.IndexOf("\n## ", 3)
    let section = if next > 0 then section.Substring(0, next) else section
    [ for m in Regex.Matches(section, @"(?m)^\| `([^`]+)` \| ([^|]*)\|") ->
        let names = [ for n in Regex.Matches(m.Groups[2].Value, @"`([^`]+)`") -> n.Groups[1].Value ]
        m.Groups[1].Value, Set.ofList names ]
    |> Map.ofList

[<Tests>]
let tests =
    testList "project references" [
        testCase "every project's references are allowed by docs/architecture.md, and every project has a row there"
        <| fun () ->
            let allowed = allowedReferences ()
            let projects = projectFiles ()
            Expect.isGreaterThanOrEqual projects.Length 6 "finds the project files"
            for name, path in projects do
                match allowed.TryFind name with
                | None -> failtestf "%s (%s) has no row in docs/architecture.md's \"Who may reference whom\"" name path
                | Some mayUse ->
                    for r in projectReferences path do
                        if not (mayUse.Contains r) then
                            failtestf
                                "%s references %s, which docs/architecture.md does not allow (it may reference: %s)"
                                name r (if mayUse.IsEmpty then "nothing" else String.Join(", ", mayUse))
            let names = projects |> List.map fst |> Set.ofList
            for row in allowed.Keys do
                Expect.isTrue (names.Contains row) $"docs/architecture.md's row {row} names a project that exists"

        testCase "the libraries reference TorchSharp without a backend; a backend reaches no package's users"
        <| fun () ->
            let path name = projectFiles () |> List.find (fun (n, _) -> n = name) |> snd
            let core = items (path "Lens.Core") "PackageReference" |> List.map snd
            Expect.contains core "TorchSharp" "Lens.Core references TorchSharp"
            for name in [ "Lens.Core"; "Lens.Hub"; "Lens.Visualization"; "Lens.Training"; "Lens.Demo"; "Lens.Models";
                          "Lens.Dsl"; "Lens.FSharp" ] do
                for e, inc in items (path name) "PackageReference" do
                    if inc = "$(TorchSharpBackend)" || inc.StartsWith "TorchSharp-" || inc.StartsWith "libtorch" then
                        let privateAssets = e.Attribute(XName.Get "PrivateAssets")
                        Expect.isTrue (not (isNull privateAssets) && privateAssets.Value = "all")
                            ($"{name} may use the backend {inc} for its own build folder only (PrivateAssets=\"all\"), "
                             + "so its package leaves the choice to the application")
    ]
