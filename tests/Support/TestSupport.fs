/// Paths and comparisons shared by the tests.
module Lens.Tests.TestSupport

open System
open System.IO
open Expecto
open TorchSharp

/// A tensor's values as int64s (token ids, indices), copied to the CPU.
let longs (t: torch.Tensor) = use c = t.to_type(torch.int64).cpu().contiguous() in c.data<int64>().ToArray()

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

/// A folder for the files one test module writes, under the system's temp folder (named from prefix and unique to
/// the process), made on first use and removed when the test process exits.
let scratchFolder (prefix: string) =
    lazy
        let name = sprintf "%s-%d-%s" prefix Environment.ProcessId (Guid.NewGuid().ToString("N"))
        let dir = Path.Combine(Path.GetTempPath(), name)
        Directory.CreateDirectory dir |> ignore
        AppDomain.CurrentDomain.ProcessExit.Add(fun _ -> try Directory.Delete(dir, true) with _ -> ())
        dir

/// A fresh, empty folder in a scratch folder, named from name.
let freshFolderIn (scratch: Lazy<string>) (name: string) =
    let dir = Path.Combine(scratch.Force(), name + "-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    dir

/// External models that must not be committed (stories260K): LENS_EXTERNAL_MODELS or ../shared/models.
let externalModel (name: string) =
    let roots =
        [ Environment.GetEnvironmentVariable "LENS_EXTERNAL_MODELS"
          Path.Combine(repoRoot, "..", "shared", "models") ]
    roots
    |> List.filter (fun r -> not (String.IsNullOrEmpty r))
    |> List.map (fun r -> Path.GetFullPath(Path.Combine(r, name)))
    |> List.tryFind Directory.Exists

/// Under CI (CI=true) data outside the repository is required; on a developer's machine it may be absent.
let runningInCi = String.Equals(Environment.GetEnvironmentVariable "CI", "true", StringComparison.OrdinalIgnoreCase)

/// Skips the current test with a loud reason naming what is missing and how to get it; under CI it fails
/// instead, so CI never skips a test silently.
let skipOrFailMissing (what: string) (howToGet: string) : 'a =
    let message = sprintf "MISSING: %s. %s" what howToGet
    if runningInCi then failtest message else skiptest message

/// The message of the exception a call throws (fails the test when it throws nothing or something else).
let messageOf<'e when 'e :> exn> (f: unit -> unit) : string =
    try
        f ()
        failtestf "expected %s" typeof<'e>.Name
    with :? 'e as e -> e.Message

/// ../shared beside the checkout (third-party or generated data that must not be committed).
let sharedRoot = Path.GetFullPath(Path.Combine(repoRoot, "..", "shared"))

/// A path under ../shared (e.g. "fixtures/tokenizers/llama3"); skips the test loudly when it is absent.
let requireShared (relative: string) =
    let path = Path.Combine(sharedRoot, relative)
    if File.Exists path || Directory.Exists path then path
    else skipOrFailMissing (sprintf "%s (from ../shared)" path) ("Place the project's shared/ folder beside the "
                                                                 + "checkout; CI provides it.")

/// A test that needs an external model: skipped with a loud reason when absent (failed under CI).
let testWithExternalModel name (body: string -> unit) =
    testCase name (fun () ->
        match externalModel "stories260K" with
        | Some dir -> body dir
        | None ->
            skipOrFailMissing
                "external model stories260K (not in LENS_EXTERNAL_MODELS or ../shared/models)"
                "Place the project's shared/ folder beside the checkout, or set LENS_EXTERNAL_MODELS; CI provides it.")

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
