/// Paths and comparisons shared by the tests.
module Lens.Tests.TestSupport

open System
open System.IO
open Expecto
open TorchSharp

/// The repository root (the folder holding Lens.sln), found from the test binary's location.
let repoRoot =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "Lens.sln not found above the test binary"
        elif File.Exists(Path.Combine(d.FullName, "Lens.sln")) then d.FullName
        else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// Fixtures copied into the repo (tests/fixtures); see tests/fixtures/README.md for provenance.
let fixture (parts: string list) = Path.Combine(Array.ofList (repoRoot :: "tests" :: "fixtures" :: parts))

/// Where an artefact of a test run goes (screenshots, reports); kept out of git.
let artifact (name: string) =
    let dir = Path.Combine(repoRoot, "tests", "artifacts")
    Directory.CreateDirectory dir |> ignore
    Path.Combine(dir, name)

/// External models that must not be committed (stories260K): LENS_EXTERNAL_MODELS or ../shared/models.
let externalModel (name: string) =
    let roots =
        [ Environment.GetEnvironmentVariable "LENS_EXTERNAL_MODELS"
          Path.Combine(repoRoot, "..", "shared", "models") ]
    roots
    |> List.filter (fun r -> not (String.IsNullOrEmpty r))
    |> List.map (fun r -> Path.GetFullPath(Path.Combine(r, name)))
    |> List.tryFind Directory.Exists

/// A test that needs an external model: it fails loudly (not silently skipped) when the model is absent.
let testWithExternalModel name (body: string -> unit) =
    testCase name (fun () ->
        match externalModel "stories260K" with
        | Some dir -> body dir
        | None ->
            failtestf "EXTERNAL MODEL MISSING: stories260K not found in LENS_EXTERNAL_MODELS or ../shared/models")

/// Largest |a-b| - tol*|b| style check: passes when every element is within atol or rtol.
let maxAbsDiff (a: torch.Tensor) (b: torch.Tensor) =
    use d = (a.to_type(torch.float64) - b.to_type(torch.float64)).abs()
    if d.numel() = 0L then 0.0 else d.max().item<float>()

let expectClose (tol: float) (what: string) (actual: torch.Tensor) (expected: torch.Tensor) =
    Expect.sequenceEqual (actual.shape) (expected.shape) (sprintf "%s: shape" what)
    use a64 = actual.to_type(torch.float64)
    use e64 = expected.to_type(torch.float64)
    use diff = (a64 - e64).abs()
    use allowed = e64.abs() * tol
    use bad = (diff.gt(torch.tensor(tol, dtype = torch.float64))).logical_and(diff.gt(allowed))
    let nBad = bad.sum().item<int64>()
    if nBad > 0L then
        failtestf "%s: %d elements differ by more than %g (max |diff| %g)" what nBad tol (maxAbsDiff actual expected)
