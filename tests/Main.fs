module Lens.Tests.Main

open Expecto
open Expecto.Impl

let mutable private counts = (0, 0, 0)

/// Expecto's own printer, remembering the counts for the plain `N passed, N failed` line CI reads, and printing
/// every skipped test with its reason (what is missing and how to get it), which Expecto logs only at debug level.
let private recordingSummary (inner: TestPrinters) =
    { inner with
        ignored = fun name reason -> async {
            do! inner.ignored name reason
            System.Console.WriteLine(sprintf "SKIPPED %s: %s" name reason) }
        summary = fun config summary -> async {
            do! inner.summary config summary
            counts <-
                (summary.passed.Length, summary.failed.Length + summary.errored.Length, summary.ignored.Length) } }

[<EntryPoint>]
let main argv =
    Lens.Native.TorchNative.EnsureLoaded()
    Lens.Models.ModelSources.Use()
    let code =
        Tests.runTestsInAssemblyWithCLIArgs
            [ CLIArguments.No_Spinner; CLIArguments.Printer(recordingSummary TestPrinters.defaultPrinter) ] argv
    let passed, failed, skipped = counts
    System.Console.Out.Flush()
    System.Console.Write("\u001b[0m\n")
    System.Console.WriteLine(sprintf "%d passed, %d failed, %d skipped" passed failed skipped)
    code
