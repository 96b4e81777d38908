/// Lens as its users consume it: the packages packed into a local folder feed, then a script that starts
/// with `#r "nuget: Lens.FSharp"` and `dotnet tool install lens` from that feed; and the README's F#
/// snippet run exactly as printed. Everything runs in a scratch folder with its own nuget.config (the feed,
/// and the packages this machine already restored), so it needs no network and never reuses a stale copy
/// of Lens's own packages.
module Lens.Tests.PackageTests

open System
open System.IO
open System.Runtime.InteropServices
open System.Text.RegularExpressions
open Expecto
open Lens
open Lens.FSharp
open Lens.Tests.TestSupport
open Lens.Tests.Processes

let private configuration = if AppContext.BaseDirectory.Contains("/Release/") then "Release" else "Debug"

/// The user's NuGet package folder (what `dotnet build` restored into).
let private userPackages =
    match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
    | p when not (String.IsNullOrEmpty p) -> p
    | _ -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")

let private expectSuccess (what: string) (r: ProcessResult) =
    Expect.equal r.ExitCode 0 (sprintf "%s failed (exit %d):\n%s\n%s" what r.ExitCode r.Stdout r.Stderr)

/// A scratch folder: feed/ (the packed packages), packages/ (this run's NuGet package folder), fallback/
/// (the user's restored packages except Lens's own, linked), and a nuget.config naming them.
type private Workspace =
    { Root: string; Feed: string; Env: (string * string) list }

let private workspace =
    lazy (
        let root = Path.Combine(Path.GetTempPath(), "lens-packages-" + Guid.NewGuid().ToString("N").Substring(0, 8))
        let feed = Path.Combine(root, "feed")
        let packages = Path.Combine(root, "packages")
        let fallback = Path.Combine(root, "fallback")
        for d in [ feed; packages; fallback ] do Directory.CreateDirectory d |> ignore
        // The feed, the package folder and the installed tool hold about 1 GB: removed when the test run ends.
        AppDomain.CurrentDomain.ProcessExit.Add(fun _ -> try Directory.Delete(root, true) with _ -> ())
        if not (Directory.Exists userPackages) then
            skipOrFailMissing (sprintf "the NuGet package folder %s" userPackages)
                "Build first (./test builds), so that Lens's dependencies are restored."
        for dir in Directory.EnumerateDirectories userPackages do
            let name = Path.GetFileName dir
            if not (name = "lens" || name.StartsWith "lens.") then
                Directory.CreateSymbolicLink(Path.Combine(fallback, name), dir) |> ignore
        let config =
            [ """<?xml version="1.0" encoding="utf-8"?>"""
              "<configuration>"
              "  <packageSources>"
              "    <clear />"
              $"""    <add key="lens-feed" value="{feed}" />"""
              $"""    <add key="restored" value="{fallback}" />"""
              "  </packageSources>"
              "  <fallbackPackageFolders>"
              "    <clear />"
              $"""    <add key="restored" value="{fallback}" />"""
              "  </fallbackPackageFolders>"
              "</configuration>" ]
        File.WriteAllLines(Path.Combine(root, "nuget.config"), config)
        { Root = root; Feed = feed;
          Env = [ "NUGET_PACKAGES", packages; "DOTNET_CLI_TELEMETRY_OPTOUT", "1"; "DOTNET_NOLOGO", "1" ] })

/// `dotnet` in the scratch folder, with its nuget.config and package folder.
let private dotnet (ws: Workspace) (args: string list) =
    run "dotnet" args ws.Root ws.Env (TimeSpan.FromMinutes 8.0)

/// `dotnet pack` in the checkout, restoring (if at all) as the build did. Packing the tool builds its ten projects
/// for the platform: on a loaded 2-core machine that took over 8 minutes once, so it gets 15.
let private pack (args: string list) =
    run "dotnet" ("pack" :: args @ [ "-nologo"; "-v"; "q" ]) repoRoot
        [ "DOTNET_CLI_TELEMETRY_OPTOUT", "1"; "DOTNET_NOLOGO", "1" ] (TimeSpan.FromMinutes 15.0)

/// The library packages, by id and project file: folder = assembly = package, except the design card's three homes.
let libraryProjects =
    [ "Lens.Core", "src/Core.CSharp/Lens.Core.csproj"
      "Lens.Hub", "src/Hub/Lens.Hub.csproj"
      "Lens.Visualization", "src/Visualization/Lens.Visualization.csproj"
      "Lens.Training", "src/Training/Lens.Training.csproj"
      "Lens.Demo", "src/Demo/Lens.Demo.csproj"
      "Lens.Models", "src/Models/Lens.Models.csproj"
      "Lens.Dsl", "src/Dsl/Lens.Dsl.csproj"
      "Lens.FSharp", "src/Scripts/Lens.FSharp.fsproj" ]

/// Every library package, packed from the build the tests run from: one `dotnet pack` of a solution filter naming
/// the eight projects, since each `dotnet pack` process spends seconds starting MSBuild.
let private libraries =
    lazy (
        let ws = workspace.Force()
        let filter = Path.Combine(ws.Root, "libraries.slnf")
        let projects = libraryProjects |> List.map (fun (_, project) -> $"\"{project}\"") |> String.concat ", "
        let solution = Path.Combine(repoRoot, "Lens.sln").Replace("\\", "/")
        File.WriteAllText(filter, $"{{ \"solution\": {{ \"path\": \"{solution}\", \"projects\": [ {projects} ] }} }}")
        pack [ filter; "-c"; configuration; "--no-build"; "-o"; ws.Feed ]
            |> expectSuccess "dotnet pack of the eight library projects"
        ws)

/// The `lens` tool packed for this machine's platform. The build already restored that platform
/// (Lens.Cli.csproj), so packing only adds the platform's own build beside the one the other tests run.
let private tool =
    lazy (
        let ws = workspace.Force()
        let rid = RuntimeInformation.RuntimeIdentifier
        pack [ Path.Combine(repoRoot, "src/Cli/Lens.Cli.csproj"); "-c"; configuration; "-o"; ws.Feed;
               $"-p:ToolPackageRuntimeIdentifiers={rid}" ]
        |> expectSuccess "dotnet pack src/Cli (the lens tool)"
        ws)

/// The README's F# block under "Using it from C# and F#", exactly as printed.
let readmeFSharpSnippet () =
    let readme = File.ReadAllText(Path.Combine(repoRoot, "README.md"))
    let m = Regex.Match(readme, @"```fsharp\n(#load ""src/Scripts/Lens.fsx"".*?)```", RegexOptions.Singleline)
    if not m.Success then failtest "README.md has no ```fsharp block starting with #load \"src/Scripts/Lens.fsx\""
    m.Groups[1].Value

let private inductionLines () =
    use model = Model.load "demo-attn-only-2l"
    use rep = model |> Repeated.tokens 50 8 0UL
    let scores = model |> Scores.induction rep
    [ for s in Scores.top 4 scores -> sprintf "induction L%dH%d %.6f" s.Layer s.Head s.Score ]

[<Tests>]
let tests =
    testList "packages" [
        testCase "the README's F# snippet runs as printed, from the repository root" <| fun () ->
            let snippet = readmeFSharpSnippet ()
            // #load's path is relative to the script, so the copy sits in the repository root (.gitignore'd).
            let path = Path.Combine(repoRoot, $".readme-snippet-{Environment.ProcessId}.fsx")
            try
                File.WriteAllText(path, snippet)
                let r = fsi path
                expectSuccess "dotnet fsi on the README's F# snippet" r
                Expect.stringContains r.Stdout "pattern [|1L; 4L; 15L; 15L|]"
                    "prints the layer-1 pattern's shape [batch, head, q, k]"
            finally
                File.Delete path

        testCase ("the packages carry their metadata, leave the backend to the application, and only Lens.Demo holds "
                  + "the demo weights") <| fun () ->
            let ws = libraries.Force()
            let nuspec (id: string) =
                use zip = Compression.ZipFile.OpenRead(Path.Combine(ws.Feed, $"{id}.0.1.0.nupkg"))
                let entry = zip.Entries |> Seq.find (fun e -> e.FullName.EndsWith ".nuspec")
                use reader = new StreamReader(entry.Open())
                reader.ReadToEnd(), zip.Entries |> Seq.map (fun e -> e.FullName) |> Set.ofSeq
            for id, _ in libraryProjects do
                let text, files = nuspec id
                Expect.stringContains text """<license type="expression">MIT</license>""" $"{id}: licence expression"
                Expect.stringContains text "<readme>README.md</readme>" $"{id}: readme"
                Expect.isFalse (text.Contains "Package Description") $"{id}: a real description"
                for f in [ "README.md"; "LICENSE" ] do Expect.contains files f $"{id} holds {f}"
                Expect.isTrue (files |> Set.exists (fun f -> f.EndsWith ".xml")) $"{id} holds its XML documentation"
                Expect.isFalse (Regex.IsMatch(text, """<dependency id="(TorchSharp-|libtorch)"""))
                    $"{id} brings no libtorch backend"
            let core, _ = nuspec "Lens.Core"
            Expect.stringContains core """<dependency id="TorchSharp" version="0.107.0" """
                "Lens.Core depends on TorchSharp"
            let models, _ = nuspec "Lens.Models"
            for dep in [ "Lens.Core"; "Lens.Hub"; "Lens.Demo" ] do
                Expect.stringContains models $"""<dependency id="{dep}" version="0.1.0" """
                    $"Lens.Models depends on {dep}"
            let fsharp, _ = nuspec "Lens.FSharp"
            Expect.stringContains fsharp """<dependency id="Lens.Models" version="0.1.0" """
                "Lens.FSharp brings every model source"
            let assemblySize (id: string) =
                use zip = Compression.ZipFile.OpenRead(Path.Combine(ws.Feed, $"{id}.0.1.0.nupkg"))
                (zip.Entries |> Seq.find (fun e -> e.FullName = $"lib/net10.0/{id}.dll")).Length
            let weights = FileInfo(Path.Combine(repoRoot, "models", "demo-attn-only-2l", "model.safetensors")).Length
            Expect.isGreaterThan (assemblySize "Lens.Demo") weights "Lens.Demo.dll embeds the demo model's weights"
            for id, _ in libraryProjects do
                if id <> "Lens.Demo" then
                    Expect.isLessThan (assemblySize id) (weights / 4L) $"{id}.dll holds no model weights"

        testCase "#r \"nuget: Lens.FSharp\" from a local feed computes the demo model's induction scores" <| fun () ->
            let ws = libraries.Force()
            let script = Path.Combine(ws.Root, "nuget-induction.fsx")
            File.Copy(Path.Combine(repoRoot, "examples", "nuget-induction.fsx"), script)
            Expect.isTrue ((File.ReadAllText script).StartsWith "#r \"nuget: Lens.FSharp\"" )
                "the script starts with #r \"nuget: Lens.FSharp\""
            let r = dotnet ws [ "fsi"; "--quiet"; script ]
            expectSuccess "dotnet fsi examples/nuget-induction.fsx" r
            let printed =
                r.Stdout.Split('\n') |> Array.map (fun l -> l.Trim())
                    |> Array.filter (fun l -> l.StartsWith "induction") |> List.ofArray
            Expect.equal printed (inductionLines ())
                "the same top induction heads and scores as the library computes here"

        testCase "dotnet tool install lens from a local feed gives a working lens command" <| fun () ->
            let ws = tool.Force()
            let tools = Path.Combine(ws.Root, "tools")
            dotnet ws [ "tool"; "install"; "lens"; "--add-source"; ws.Feed; "--tool-path"; tools ]
                |> expectSuccess "dotnet tool install lens"
            let lensCommand = Path.Combine(tools, "lens")
            let r =
                run lensCommand [ "run"; Path.Combine(repoRoot, "examples", "induction.lens") ] ws.Root ws.Env
                    (TimeSpan.FromMinutes 5.0)
            expectSuccess "the installed lens run examples/induction.lens" r
            Expect.stringContains r.Stdout "induction scores" "prints the induction table"
    ]
