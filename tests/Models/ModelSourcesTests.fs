/// The one ordered list of model sources (src/Models/ModelSources.cs), and what it asks of hosts: no module
/// initializer does their work, the list reads in the documented order, and the core alone refuses with a hint.
module Lens.Tests.ModelSourcesTests

open System.IO
open Expecto
open Lens
open Lens.Pretrained
open Lens.Models
open Lens.Tests.TestSupport

[<Tests>]
let tests =
    testList "model sources" [
        testCase ("ModelSources.All tries the embedded demo, local folders and files, then known names and hub ids, in "
                  + "that order") <| fun () ->
            let kinds = ModelSources.All |> Seq.map (fun s -> s.Kind) |> List.ofSeq
            let expected =
                [ "embedded model"; "TransformerLens-native"; "hub-layout"; "llama2.c"; "known model name"; "hub id" ]
            Expect.equal kinds.Length expected.Length "six sources"
            for kind, prefix in List.zip kinds expected do Expect.stringStarts kind prefix "in the documented order"
            Expect.isTrue (obj.ReferenceEquals(ModelLoader.Sources, ModelSources.All))
                "the test host installed the full list (Main.fs)"

        testCase ("the core alone knows the local sources: the demo's name is refused, naming what was tried and how "
                  + "to get the rest") <| fun () ->
            let load () = ModelLoader.Load("demo-attn-only-2l", sources = PretrainedSources.Local) |> ignore
            let message = messageOf<CheckpointException> load
            Expect.stringContains message "unknown model 'demo-attn-only-2l'" "names the model"
            for kind in [ "TransformerLens-native"; "hub-layout"; "llama2.c" ] do
                Expect.stringContains message kind "lists the sources tried"
            Expect.stringContains message "Lens.Models.ModelSources.Use()" "says how to get the rest"
            use model = ModelLoader.Load("demo-attn-only-2l", sources = ModelSources.All)
            Expect.equal model.Config.NLayers 2 "the full list finds the embedded demo model"

        testCase "with the full list, an unknown name is refused naming every source tried" <| fun () ->
            let message = messageOf<CheckpointException> (fun () -> ModelLoader.Load "surely-not-a-model" |> ignore)
            for kind in [ "embedded model (demo-attn-only-2l)"; "TransformerLens-native"; "hub-layout"; "llama2.c";
                          "known model name"; "hub id" ] do
                Expect.stringContains message kind "lists every source"
            Expect.isFalse (message.Contains "ModelSources.Use()") "no hint once the full list is in use"

        testCase "no module initializers: hosts call TorchNative.EnsureLoaded and ModelSources.Use themselves"
        <| fun () ->
            let offenders =
                Directory.EnumerateFiles(Path.Combine(repoRoot, "src"), "*.cs", SearchOption.AllDirectories)
                |> Seq.filter (fun f -> not (f.Contains "/obj/" || f.Contains "/bin/"))
                |> Seq.filter (fun f -> File.ReadAllText(f).Contains "[ModuleInitializer]")
                |> List.ofSeq
            Expect.isEmpty offenders "no [ModuleInitializer] under src/"
    ]
