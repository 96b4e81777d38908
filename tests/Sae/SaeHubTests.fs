/// SAEs named by a hub repository id (owner/repo[/folder]) download through the hub cache, from a hub-like
/// server on 127.0.0.1 (HubTests.FakeHub), and load to the same weights as the local folder; the experiment
/// language's `sae load` takes the same ids (run and `lens check`).
module Lens.Tests.SaeHubTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens.Sae
open Lens.Hub
open Lens.Dsl
open Lens.Dsl.Runtime
open Lens.Tests.TestSupport
open Lens.Tests.HubTests

let private demoSae = Path.Combine(repoRoot, "models", "demo-attn-only-2l-sae")
let private saeRepo = "lens-test/saes"

let private sameWeights (a: SparseAutoencoder) (b: SparseAutoencoder) =
    let sa = [ for kv in a.StateDict() -> kv.Key, kv.Value ]
    let sb = dict [ for kv in b.StateDict() -> kv.Key, kv.Value ]
    Expect.equal (List.map fst sa) (List.ofSeq sb.Keys) "same tensors"
    for name, t in sa do Expect.isTrue (t.allclose(sb[name], 0.0, 0.0)) (sprintf "%s equal" name)

/// A hub serving the demo SAE's folder under blocks.0.hook_resid_post/ of saeRepo (its weights as an LFS file).
let private demoSaeHub () =
    let file name lfs =
        { Name = "blocks.0.hook_resid_post/" + name; Bytes = File.ReadAllBytes(Path.Combine(demoSae, name)); Lfs = lfs }
    new FakeHub(saeRepo, commit, [ file "cfg.json" false; file "sae_weights.safetensors" true; readmeFile ])

[<Tests>]
let tests =
    testList "sae hub" [
        testCase ("owner/repo/folder: a SAELens folder inside a hub repository downloads into the cache and loads as "
                  + "the local folder") <| fun () ->
            use hub = demoSaeHub ()
            use cache = new TempCache()
            let opts = options cache hub
            Expect.isTrue (SaeHubSource.IsRepoId "lens-test/saes/blocks.0.hook_resid_post") "reads as a repo id"
            Expect.isFalse (SaeHubSource.IsRepoId demoSae) "an existing folder is not"
            use fromHub = SaeHubSource.Load("lens-test/saes/blocks.0.hook_resid_post", hub = opts)
            use local = SparseAutoencoder.Load demoSae
            sameWeights fromHub local
            Expect.equal fromHub.HookName local.HookName "hook from cfg.json"
            let folder = SaeHubSource.Download("lens-test/saes/blocks.0.hook_resid_post", opts)
            Expect.stringContains folder (Path.Combine("models--lens-test--saes", "snapshots", commit))
                "in the hub cache's snapshot"
            Expect.isFalse (File.Exists(Path.Combine(folder, "..", "README.md"))) "only the SAE's files"

            let e =
                Expect.throwsC (fun () ->
                    SaeHubSource.Load("lens-test/saes/blocks.1.hook_resid_post", hub = opts) |> ignore) (fun e -> e)
            Expect.isTrue (e :? SaeException) "an SaeException"
            Expect.stringContains e.Message "hub repository lens-test/saes has no SAE in 'blocks.1.hook_resid_post'"
                "names the repository and folder"
            Expect.stringContains e.Message "SAE folders there include blocks.0.hook_resid_post" "lists what is there"
            let e = Expect.throwsC (fun () -> SaeHubSource.Load("lens-test/other/x", hub = opts) |> ignore) (fun e -> e)
            Expect.stringContains e.Message ("'lens-test/other/x' is not a local SAE folder or file, and as a hub "
                                             + "repository id:") "a missing repository names the id"

        testCase ("Gemma Scope's layer_N/width_W/average_l0_K path: params.npz through the cache, the hook read from "
                  + "the repository's name") <| fun () ->
            let npz = requireShared "fixtures/sae/gemma-scope-layout/layer_0/width_384/average_l0_40/params.npz"
            let id = "google/gemma-scope-2b-pt-res"
            use hub =
                new FakeHub(id, commit,
                            [ { Name = "layer_0/width_384/average_l0_40/params.npz"; Bytes = File.ReadAllBytes npz;
                                Lfs = true } ])
            use cache = new TempCache()
            use sae = SaeHubSource.Load(id + "/layer_0/width_384/average_l0_40", hub = options cache hub)
            Expect.equal sae.HookName "blocks.0.hook_resid_post" "res repository, layer 0"
            Expect.equal sae.Config.Architecture "jumprelu" "Gemma Scope is JumpReLU"
            use local = SaeLoader.Load(npz, "blocks.0.hook_resid_post")
            sameWeights sae local

        testCase ("sae load owner/repo/folder in the language: runs as the local folder does; lens check resolves it "
                  + "and names an unknown id") <| fun () ->
            use hub = demoSaeHub ()
            use cache = new TempCache()
            let opts = options cache hub
            // The experiment's folder holds no `lens-test/...`, so the reference is a hub id.
            let folder = Path.Combine(Path.GetTempPath(), "lens-sae-hub-dsl-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory folder |> ignore
            try
                let text sae =
                    sprintf
                        "model demo-attn-only-2l\ninput tokens [[50256, 464, 3797, 3332, 319, 262, 2603]]\n\
                         sae load %s\nfeatures top 3\n" sae
                let env source =
                    new ExperimentEnvironment(FileName = "hub.lens", SourceText = source, ReadDirectory = folder,
                                              Hub = opts)
                let check sae =
                    use env = env (text sae)
                    Pipeline.Parse(text sae, "hub.lens").Check(ExperimentState.Start env) |> Seq.map string
                        |> List.ofSeq
                let featuresTop sae =
                    use env = env (text sae)
                    let state = Pipeline.Parse(text sae, "hub.lens").Execute env
                    match (state.Results |> Seq.filter (fun r -> r.Text.StartsWith "features top") |> Seq.last).Value
                    with
                    | :? TableValue as t -> [ for row in t.Rows -> [ for cell in row -> string cell ] ]
                    | other -> failtestf "features top gave %s" other.Kind
                Expect.isEmpty (check "lens-test/saes/blocks.0.hook_resid_post") "lens check resolves the hub id"
                let fromHub = featuresTop "lens-test/saes/blocks.0.hook_resid_post"
                Expect.isGreaterThan fromHub.Length 3 "a row per position"
                Expect.equal fromHub (featuresTop (sprintf "\"%s\"" demoSae)) "the same features as the local folder"
                Expect.isTrue (Directory.Exists(Path.Combine(cache.Dir, "models--lens-test--saes")))
                    "downloaded through the hub cache"
                let unknownFolder = check "lens-test/saes/blocks.1.hook_resid_post"
                Expect.equal unknownFolder.Length 1 "one error"
                Expect.stringContains unknownFolder.Head ("cannot load the SAE 'lens-test/saes/blocks.1.hook_resid_post"
                                                          + "': hub repository lens-test/saes has no SAE in "
                                                          + "'blocks.1.hook_resid_post'")
                    "an unknown folder names the repository and folder"
                Expect.stringContains unknownFolder.Head "SAE folders there include blocks.0.hook_resid_post"
                    "and lists what is there"
                let unknownRepo = check "lens-test/other/x"
                Expect.stringContains (String.concat "\n" unknownRepo)
                    "'lens-test/other/x' is not a local SAE folder or file, and as a hub repository id:"
                    "an unknown repository names the id"
                Expect.stringContains (String.concat "\n" (check "./no-such-sae")) "SAE './no-such-sae' not found"
                    "a path that is no hub id stays a missing path"
            finally
                try Directory.Delete(folder, true) with _ -> ()
    ]
