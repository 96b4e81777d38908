/// SAEs named by a hub repository id (owner/repo[/folder]) download through the hub cache, from a hub-like
/// server on 127.0.0.1 (HubTests.FakeHub), and load to the same weights as the local folder.
module Lens.Tests.SaeHubTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens.Sae
open Lens.Hub
open Lens.Tests.TestSupport
open Lens.Tests.HubTests

let private demoSae = Path.Combine(repoRoot, "models", "demo-attn-only-2l-sae")
let private saeRepo = "lens-test/saes"

let private sameWeights (a: SparseAutoencoder) (b: SparseAutoencoder) =
    let sa = [ for kv in a.StateDict() -> kv.Key, kv.Value ]
    let sb = dict [ for kv in b.StateDict() -> kv.Key, kv.Value ]
    Expect.equal (List.map fst sa) (List.ofSeq sb.Keys) "same tensors"
    for name, t in sa do Expect.isTrue (t.allclose(sb[name], 0.0, 0.0)) (sprintf "%s equal" name)

[<Tests>]
let tests =
    testList "sae hub" [
        testCase "owner/repo/folder: a SAELens folder inside a hub repository downloads into the cache and loads as the local folder" <| fun () ->
            let file name lfs = { Name = "blocks.0.hook_resid_post/" + name; Bytes = File.ReadAllBytes(Path.Combine(demoSae, name)); Lfs = lfs }
            use hub = new FakeHub(saeRepo, commit, [ file "cfg.json" false; file "sae_weights.safetensors" true; readmeFile ])
            use cache = new TempCache()
            let opts = options cache hub
            Expect.isTrue (SaeHubSource.IsRepoId "lens-test/saes/blocks.0.hook_resid_post") "reads as a repo id"
            Expect.isFalse (SaeHubSource.IsRepoId demoSae) "an existing folder is not"
            use fromHub = SaeHubSource.Load("lens-test/saes/blocks.0.hook_resid_post", hub = opts)
            use local = SparseAutoencoder.Load demoSae
            sameWeights fromHub local
            Expect.equal fromHub.HookName local.HookName "hook from cfg.json"
            let folder = SaeHubSource.Download("lens-test/saes/blocks.0.hook_resid_post", opts)
            Expect.stringContains folder (Path.Combine("models--lens-test--saes", "snapshots", commit)) "in the hub cache's snapshot"
            Expect.isFalse (File.Exists(Path.Combine(folder, "..", "README.md"))) "only the SAE's files"

            let e = Expect.throwsC (fun () -> SaeHubSource.Load("lens-test/saes/blocks.1.hook_resid_post", hub = opts) |> ignore) (fun e -> e)
            Expect.isTrue (e :? SaeException) "an SaeException"
            Expect.stringContains e.Message "hub repository lens-test/saes has no SAE in 'blocks.1.hook_resid_post'" "names the repository and folder"
            Expect.stringContains e.Message "SAE folders there include blocks.0.hook_resid_post" "lists what is there"
            let e = Expect.throwsC (fun () -> SaeHubSource.Load("lens-test/other/x", hub = opts) |> ignore) (fun e -> e)
            Expect.stringContains e.Message "'lens-test/other/x' is not a local SAE folder or file, and as a hub repository id:" "a missing repository names the id"

        testCase "Gemma Scope's layer_N/width_W/average_l0_K path: params.npz through the cache, the hook read from the repository's name" <| fun () ->
            let npz = requireShared "fixtures/sae/gemma-scope-layout/layer_0/width_384/average_l0_40/params.npz"
            let id = "google/gemma-scope-2b-pt-res"
            use hub = new FakeHub(id, commit, [ { Name = "layer_0/width_384/average_l0_40/params.npz"; Bytes = File.ReadAllBytes npz; Lfs = true } ])
            use cache = new TempCache()
            use sae = SaeHubSource.Load(id + "/layer_0/width_384/average_l0_40", hub = options cache hub)
            Expect.equal sae.HookName "blocks.0.hook_resid_post" "res repository, layer 0"
            Expect.equal sae.Config.Architecture "jumprelu" "Gemma Scope is JumpReLU"
            use local = SaeLoader.Load(npz, "blocks.0.hook_resid_post")
            sameWeights sae local
    ]
