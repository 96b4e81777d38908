/// Running Lens's own entry points as processes (the CLI, dotnet fsi), with a bounded wait.
module Lens.Tests.Processes

open System
open System.Diagnostics
open System.IO
open Lens.Tests.TestSupport

type ProcessResult = { ExitCode: int; Stdout: string; Stderr: string }

let run (fileName: string) (args: string list) (workDir: string) (env: (string * string) list) (timeout: TimeSpan) =
    let psi =
        ProcessStartInfo(fileName, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
                         WorkingDirectory = workDir)
    for a in args do psi.ArgumentList.Add a
    for (k, v) in env do psi.Environment.[k] <- v
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(int timeout.TotalMilliseconds)) then
        p.Kill true
        failwithf "%s %s timed out after %O" fileName (String.Join(" ", args)) timeout
    { ExitCode = p.ExitCode; Stdout = out.Result; Stderr = err.Result }

/// The built `lens` command (the configuration the tests were built in).
let lensDll =
    let config = if AppContext.BaseDirectory.Contains("/Release/") then "Release" else "Debug"
    Path.Combine(repoRoot, "src", "Cli", "bin", config, "net10.0", "lens.dll")

let lens (args: string list) = run "dotnet" (lensDll :: args) repoRoot [] (TimeSpan.FromMinutes 5.0)

let lensIn (dir: string) (env: (string * string) list) (args: string list) =
    run "dotnet" (lensDll :: args) dir env (TimeSpan.FromMinutes 5.0)

let fsi (script: string) = run "dotnet" [ "fsi"; "--quiet"; script ] repoRoot [] (TimeSpan.FromMinutes 5.0)
